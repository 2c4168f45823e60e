-- Sluice schema version 8: the media repository (Synapse's tables, with
-- the columns Sluice uses).

-- One row per local media ID. media_length is NULL while a media ID made by
-- POST /_matrix/media/v1/create waits for its content; media_type,
-- upload_name and sha256 are set with the content. authenticated (0/1) is
-- enable_authenticated_media at the time of the upload: such media is not
-- served on the legacy unauthenticated endpoints, as in Synapse.
CREATE TABLE local_media_repository (
    media_id      TEXT NOT NULL PRIMARY KEY,
    media_type    TEXT,
    media_length  BIGINT,
    created_ts    BIGINT NOT NULL,
    upload_name   TEXT,
    user_id       TEXT NOT NULL,
    authenticated SMALLINT NOT NULL DEFAULT 0,
    sha256        TEXT
);
CREATE INDEX local_media_repository_user ON local_media_repository (user_id, created_ts);

-- The thumbnails generated for a local media ID (stored under
-- local_thumbnails/ in the media store).
CREATE TABLE local_media_repository_thumbnails (
    media_id         TEXT NOT NULL,
    thumbnail_width  INTEGER NOT NULL,
    thumbnail_height INTEGER NOT NULL,
    thumbnail_type   TEXT NOT NULL,
    thumbnail_method TEXT NOT NULL,
    thumbnail_length BIGINT NOT NULL,
    PRIMARY KEY (media_id, thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method)
);
