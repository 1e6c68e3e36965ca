"""Statistics: small estimators that carry their n and the name of their method.

``stats`` gives proportions with Wilson intervals and means with t-intervals, ``survival`` the
Kaplan–Meier estimate with its number at risk. They know nothing about migraine; the definitions
and views call them, and the method names they export are printed in the captions users see.
"""
