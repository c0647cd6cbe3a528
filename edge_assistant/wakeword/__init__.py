"""wakeword"""
