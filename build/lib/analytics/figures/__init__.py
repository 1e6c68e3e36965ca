"""Pure figure builders: ``build_*_figure(...) -> go.Figure``, one shared template.

Modules by audience (``patient``, ``clinic``, ``outcomes``) build figures from analytics tables;
``theme`` holds the shared Plotly template and the colours that carry meaning (missing is grey,
never white-as-zero). No builder computes a clinical definition itself.
"""
