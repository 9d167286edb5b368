"""The run itself: readers, extraction, the Ray plan, writers and the manifest."""
