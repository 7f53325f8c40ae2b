"""The body-part-map HOI network (Sec. 3 of the paper), its matcher, losses, post-processing,
torch dataset and training engine."""
