package storage_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/storage/storagetest"
)

func TestLocalMedia(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		ctx := context.Background()
		st := storagetest.Open(t, o)

		full := storage.LocalMedia{MediaID: "abcdefgh", MediaType: "image/png", Length: 12, CreatedTS: 1000,
			UploadName: "a.png", UserID: "@a:hs", Authenticated: true, SHA256: "00ff"}
		if err := st.CreateLocalMedia(ctx, full); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateLocalMedia(ctx, full); !errors.Is(err, storage.ErrMediaExists) {
			t.Fatalf("second create: %v, want ErrMediaExists", err)
		}
		got, err := st.GetLocalMedia(ctx, "abcdefgh")
		if err != nil || got != full {
			t.Fatalf("get: %+v, %v; want %+v", got, err, full)
		}
		if _, err := st.GetLocalMedia(ctx, "nosuchmedia"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("get unknown: %v", err)
		}

		// Created IDs without content: pending until set.
		for i, id := range []string{"pending1", "pending2", "pending3"} {
			if err := st.CreateLocalMedia(ctx, storage.LocalMedia{MediaID: id, Length: -1, CreatedTS: int64(2000 + i), UserID: "@a:hs"}); err != nil {
				t.Fatal(err)
			}
		}
		p, _ := st.GetLocalMedia(ctx, "pending1")
		if p.Uploaded() || p.Length != -1 || p.MediaType != "" || p.Authenticated {
			t.Fatalf("pending row %+v", p)
		}
		n, oldest, err := st.CountPendingMedia(ctx, "@a:hs", 2001)
		if err != nil || n != 2 || oldest != 2001 {
			t.Fatalf("CountPendingMedia = %d, %d, %v; want 2, 2001", n, oldest, err)
		}
		if n, _, _ := st.CountPendingMedia(ctx, "@b:hs", 0); n != 0 {
			t.Fatalf("another user's pending count %d", n)
		}
		set := storage.LocalMedia{MediaID: "pending1", MediaType: "text/plain", Length: 5, UploadName: "x.txt", SHA256: "ab"}
		if err := st.SetLocalMediaContent(ctx, set); err != nil {
			t.Fatal(err)
		}
		if err := st.SetLocalMediaContent(ctx, set); !errors.Is(err, storage.ErrMediaExists) {
			t.Fatalf("second set: %v, want ErrMediaExists", err)
		}
		if err := st.SetLocalMediaContent(ctx, storage.LocalMedia{MediaID: "nosuchmedia", Length: 1}); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("set unknown: %v, want ErrNotFound", err)
		}
		p, _ = st.GetLocalMedia(ctx, "pending1")
		if !p.Uploaded() || p.Length != 5 || p.MediaType != "text/plain" || p.UploadName != "x.txt" || p.CreatedTS != 2000 || p.UserID != "@a:hs" {
			t.Fatalf("after set: %+v", p)
		}

		// Thumbnails: recorded once per size, type and method.
		th := []storage.MediaThumbnail{
			{MediaID: "abcdefgh", Width: 96, Height: 96, Type: "image/png", Method: "crop", Length: 300},
			{MediaID: "abcdefgh", Width: 32, Height: 32, Type: "image/png", Method: "crop", Length: 100},
		}
		for _, x := range append(th, th[0]) {
			if err := st.AddLocalThumbnail(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		list, err := st.LocalThumbnails(ctx, "abcdefgh")
		if err != nil || !reflect.DeepEqual(list, []storage.MediaThumbnail{th[1], th[0]}) {
			t.Fatalf("thumbnails %+v, %v", list, err)
		}
		if list, _ := st.LocalThumbnails(ctx, "pending2"); len(list) != 0 {
			t.Fatalf("thumbnails of another media: %+v", list)
		}
	})
}
