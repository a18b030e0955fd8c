"""Publisher: the content calendar that posts on time, once, and says why when it cannot."""
