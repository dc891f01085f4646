"""The reference network that embeds images for the feature metrics: the shipped classifier, the
rotation classifier of unlabelled datasets, and Inception where its weights are present."""
