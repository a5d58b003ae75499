"""audiocap.models"""
