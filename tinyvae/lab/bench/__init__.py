"""The speed benchmark's measurements (tinyvae/commands/bench.py prints them).

    bench.py      what a training epoch costs, and what bounds it (its products, the BLAS's peak)
    bench_iw.py   what bounds L_k: the decoder's products, and the passes over each sample
"""
