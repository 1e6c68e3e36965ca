"""Registry scale: the same exact analysis on partitions of patients, in bounded memory, on one or many machines.

Every rule of SPEC §2–§5 is local to one patient except ``as_of`` (a maximum over all dates) and the
cohort tables (built from the small per-patient-cycle table). So the pipeline runs in three rounds
of tasks over partitions of patients, each with the code that the single-process path uses:

1. ``split``: one streaming pass over the input files writes each row, with its physical line
   number, to the partition of its patient (a stable hash of the patient_id text);
2. ``engine.check_partition``: the row rules of SPEC §2.1 (``load.validate_tables``) on each
   partition, which also gives the partition's latest accepted date; ``as_of`` is their maximum;
3. ``engine.analyse_partition``: ``pipeline.analyse_at`` on each partition for that ``as_of``.

The client then concatenates the per-patient tables in patient order, computes the cohort and
safety tables from them and caps the rejection listing as the single-process loader does, so the
exports are byte-identical to ``load_dataset`` + ``analyse`` (tests compare them). Tasks run in
this process, in a pool of local processes, or on a Dask cluster (``runners``).
"""
