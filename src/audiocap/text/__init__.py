"""audiocap.text"""
