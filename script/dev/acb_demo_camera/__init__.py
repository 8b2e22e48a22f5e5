"""Development-only camera platform for script/develop: an RTSP URL as a camera entity."""
