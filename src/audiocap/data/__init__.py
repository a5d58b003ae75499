"""audiocap.data"""
