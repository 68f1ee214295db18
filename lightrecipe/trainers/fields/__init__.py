"""What a recipe's fields may hold, below the Recipe itself: the choices, bounds and types of every field, the
timm architecture names, the rule that fits MoCo's queue and batch to the training images, the groups of graded
smoothing, recipes as text (recipe files, `--set key=value`), and the one strict YAML reader that recipe and space
files are read with. Pure rules: imports nothing of lightrecipe but the ground."""
