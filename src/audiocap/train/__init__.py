"""audiocap.train"""
