"""Show: figures, UMAP maps, the ipywidgets explorer and the report pages."""
