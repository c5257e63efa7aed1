"""The results window's parts (``forge window``).

    history_data.py   no Qt: the history over the index (an adapter for the window)
    overview_data.py  no Qt: the Overview's cards (newest results of a machine, a few
                      documents) and its open change points
    document_data.py  no Qt: pure functions turning one result document into what a view
                      shows, and comparisons of results or runtimes
    overview.py   the Overview page: cards that wrap, QPainter sparklines
    table.py      HistoryModel (lazy table over 10,000 summaries) and HistoryFilter (proxy)
    detail.py     one result: facts, statistics, samples, phases, environment, warnings
    plots.py      pyqtgraph (imported only from here, when a plot is first needed)
    compare.py    two results, or the runtimes of one, with ratios, CIs and verdicts
    run_panel.py  any benchmark action of the registry, through JobRunner and the bridge
    resources.py  live SystemAnalyzer figures, measured in a worker thread
    worker.py     run a function in a named thread, hand its result to the GUI thread
"""
