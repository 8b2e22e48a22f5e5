"""Real test peers (fake camera, Echo-like client, ffmpeg/GStreamer clients, stunnel, PKI)."""
