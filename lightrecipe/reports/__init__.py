"""Reports: trial databases -> tidy DataFrames -> figures (one module per figure, data first, drawing second)
-> report.html, report.md, trials.csv and best-<arch>.yaml recipes.

Owns: sources.py and tables.py (reading), selections.py (what the figures and the report select from the frames),
headline.py, holdup.py, best_recipes.py (what the report states), figures/ (each figure, and style.py: how every
figure looks), text.py (how numbers are written), render_html.py, render_md.py, report.py and build.py (the report
itself), commands.py (`lightrecipe report`). May import: errors, stats, trainers' recipe rules, and search's trial
records (store/); it reads trial databases, it never runs a sweep.
"""
