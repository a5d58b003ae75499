"""audiocap.serve"""
