"""The images a run learns from: found on disk or downloaded, verified, and binarized.

    data.py       the datasets (MNIST, Fashion-MNIST, binarized MNIST): where their files are
                  looked for, their published hashes, load_dataset
    readers.py    the IDX and .amat file formats read with bounded memory, and hashed while read
    download.py   a file fetched from a list of mirrors, never left half-written
    binarize.py   binary pixels for a Bernoulli likelihood, and the minibatches of an epoch
"""
