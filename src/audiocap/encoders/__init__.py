"""audiocap.encoders"""
