"""audiocap.metrics"""
