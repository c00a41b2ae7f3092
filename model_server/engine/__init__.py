"""The stacked engine: every batched computation of the product, one file per job.

    geometry.py   BucketKey, Layout (where each parameter sits in a row of theta), Shape
    handle.py     RunHandle: what the engine reads of a run and the few calls it makes on it
    rows.py       row storage: every run's device tensors and host settings (join, leave, load)
    tables.py     device tables derived from the rows' settings (rebuilt after a change)
    forward.py    the batched forward pass: affine/conv layers, dropout, BatchNorm, losses
    backward.py   the gradient: the forward pass's tape walked backwards
    optim.py      SGD, momentum and Adam over theta, per-row hyper-parameters
    batches.py    each run's batch order
    history.py    per-step losses into rings, the timeline, evaluations
    views.py      what the slow panels show: weights, boundaries, watched neurons, last masks
    group.py      models side by side (a sweep's, a lesson's copies): Members in buckets

model_server.bucket.Bucket orchestrates a step over these parts; model_server.snapshot
turns a bucket's state into frames.
"""
