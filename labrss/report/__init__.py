"""Reports: PNG plots and Markdown/HTML summaries of runs."""
