"""audiocap.decoding"""
