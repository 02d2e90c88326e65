"""The CRM screen pop: when a call rings an agent (and again when it is answered), look the
caller up and publish a `screenpop.pop` event that only that agent's desktop subscribes to
(`screenpop.<site>.<agent>.pop`). See README.md in this folder.
"""
