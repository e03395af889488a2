"""The weathers the graph translates into, and their BDD100K spellings: one home for both.

A weather is named as vKITTI2 names its rendered variation (`fog`, `rain`, `overcast`); the real
frames of that weather are the BDD100K frames whose `attributes.weather` is its BDD100K spelling.
"""

WEATHERS = ("fog", "rain", "overcast")
# vKITTI2 variation name -> the BDD100K `weather` attribute value of the matching real frames.
BDD_WEATHER = {"fog": "foggy", "rain": "rainy", "overcast": "overcast"}
