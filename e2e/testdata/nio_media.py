"""Profile and media flows through matrix-nio, a real Matrix client library.

Usage: nio_media.py BASE_URL. Two users register; one sets a display name,
uploads a PNG image, sends it as an m.image message in a room the other
has joined; the other receives the message through nio's sync, reads the
sender's display name from the room's member list and downloads the image
back. Prints one line per step; the Go test checks them. Exits non-zero on
an unexpected answer.
"""
import asyncio
import io
import struct
import sys
import zlib

import nio


def png(width, height):
    """A small valid RGB PNG with a gradient, built by hand (no PIL)."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 128)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


async def main(base):
    alice = nio.AsyncClient(base, "nioalice")
    r = await alice.register("nioalice", "pw-alice", "nio alice")
    assert isinstance(r, nio.RegisterResponse), r
    bob = nio.AsyncClient(base, "niobob")
    r = await bob.register("niobob", "pw-bob", "nio bob")
    assert isinstance(r, nio.RegisterResponse), r

    r = await alice.set_displayname("Alice in Nio")
    assert isinstance(r, nio.ProfileSetDisplayNameResponse), r
    r = await bob.get_displayname(alice.user_id)
    assert isinstance(r, nio.ProfileGetDisplayNameResponse), r
    print("displayname", r.displayname)

    r = await alice.room_create(name="pictures", invite=[bob.user_id])
    assert isinstance(r, nio.RoomCreateResponse), r
    room_id = r.room_id
    r = await bob.join(room_id)
    assert isinstance(r, nio.JoinResponse), r
    r = await bob.sync(timeout=0)
    assert isinstance(r, nio.SyncResponse), r
    since = r.next_batch

    data = png(64, 48)
    r, _ = await alice.upload(io.BytesIO(data), content_type="image/png", filename="gradient.png", filesize=len(data))
    assert isinstance(r, nio.UploadResponse), r
    mxc = r.content_uri
    print("upload", mxc.startswith("mxc://"))
    r = await alice.room_send(room_id, "m.room.message", {
        "msgtype": "m.image", "body": "gradient.png", "url": mxc,
        "info": {"mimetype": "image/png", "size": len(data), "w": 64, "h": 48},
    })
    assert isinstance(r, nio.RoomSendResponse), r

    got = None
    for _ in range(10):
        r = await bob.sync(timeout=5000, since=since)
        assert isinstance(r, nio.SyncResponse), r
        since = r.next_batch
        room = r.rooms.join.get(room_id)
        for ev in (room.timeline.events if room else []):
            if isinstance(ev, nio.RoomMessageImage):
                got = ev
        if got:
            break
    assert got is not None, "bob never received the image"
    print("received", type(got).__name__, got.url == mxc)
    print("sender-name", bob.rooms[room_id].user_name(alice.user_id))

    r = await bob.download(mxc)
    assert isinstance(r, nio.DownloadResponse), r
    print("download", r.content_type, r.body == data)
    server_name, media_id = mxc[len("mxc://"):].split("/", 1)
    r = await bob.thumbnail(server_name, media_id, 32, 32, nio.ResizingMethod.crop)
    assert isinstance(r, nio.ThumbnailResponse), r
    print("thumbnail", r.content_type, r.body[:8] == b"\x89PNG\r\n\x1a\n")

    await alice.close()
    await bob.close()


asyncio.run(main(sys.argv[1]))
