"""RTSP for alexa_cam_bridge.

Pure, sans-IO protocol modules (``messages``, ``sdp``, ``h264``, ``rtp``, ``auth``) that
never touch sockets or asyncio, and the asyncio shell (``client``, ``relay``, ``server``)
built on top of them.
"""
