"""The run itself: readers, extraction, the Ray Data plan, writers and the manifest."""
