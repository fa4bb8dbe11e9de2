"""Reports: terminal text summaries, and notebooks executed into offline HTML."""
