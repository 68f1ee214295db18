"""Data: datasets (the bundled digits, CIFAR, ImageNet-layout folders) as uint8 splits, their fixed stratified
cuts, image decoding in loader workers (or of JPEGs on the training device), and the two-view augmentation on the training device.

Owns: pixels.py (normalisation, resizing), splits.py (Split, Dataset, the cuts), datasets.py (`load_dataset`),
formats.py (CIFAR files), image_folder.py and image_decode.py (folders), tree.py and unlabeled.py (unlabeled
image trees), cache.py and prepare.py (the prepared cache: read, write), digits_folder.py (the digits as a
folder), augment.py (views). May import: errors and trainers' recipe rules.
"""
