"""Curation: what a collection's moderators should look at, from its champion's scores.

Pure functions on arrays (no I/O): `suggestions` ranks unlabelled images by probability with
near-duplicates collapsed, `audit` finds labels that out-of-fold probabilities contradict,
`review_queue` picks the images whose labels would teach the classifier most. What they find
is shown to a person; the platform never applies it.
"""
