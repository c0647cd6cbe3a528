"""gnss"""
