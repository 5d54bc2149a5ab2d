"""The import's life: its status machine, its repository (all lead_imports SQL), its resource model."""
