//! Reading: segments and by-link rows of clean pieces, and the
//! `ClickReader` queries over them.

use super::*;

impl FjallSink {
    /// The segments of `level` starting in `[from, to)`: (start, source).
    pub(super) fn segments_in(
        &self,
        level: Level,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<Vec<(UnixMillis, Vec<u8>)>, SinkError> {
        let mut found = Vec::new();
        let start = bucket_key(level, from);
        let end = bucket_key(level, to);
        for item in self.manifest.range(start..end) {
            let key = item.key().map_err(failed)?;
            let Some(source) = key.get(9..).filter(|s| source_len(s).is_some()) else {
                continue;
            };
            found.push((unsortable(&key[1..9]), source.to_vec()));
        }
        Ok(found)
    }

    /// Visits the rows of `link` and `dimension` in the clean piece
    /// `(level, from, to)`: (bucket start, bot, value, count).
    pub(super) fn read_piece(
        &self,
        (level, from, to): (Level, UnixMillis, UnixMillis),
        link: LinkId,
        dimension: Dimension,
        visit: &mut impl FnMut(UnixMillis, bool, &[u8], u64),
    ) -> Result<(), SinkError> {
        if let Some(rows) = self.by_link(level) {
            let start = row_prefix(link, dimension, from);
            let end = row_prefix(link, dimension, to);
            for item in rows.range(start..end) {
                let (key, value) = item.into_inner().map_err(failed)?;
                if let Some(row) = parse_row_key(&key) {
                    visit(row.at, row.bot, row.value, count_of(&value));
                }
            }
            return Ok(());
        }
        // Seek the one chunk of each segment that can hold the link.
        for (at, source) in self.segments_in(level, from, to)? {
            let start = chunk_key(at, &source, dimension, link);
            let end = chunk_key(at, &source, dimension, LinkId::MAX);
            let Some(item) = self.segments(level).range(start..=end).next() else {
                continue;
            };
            let chunk = item.value().map_err(failed)?;
            for row in ChunkReader::new(&chunk) {
                if row.link > link {
                    break;
                }
                if row.link == link {
                    visit(at, row.bot, row.value, row.count);
                }
            }
        }
        Ok(())
    }
}

impl ClickReader for FjallSink {
    fn series(
        &self,
        link: LinkId,
        from: UnixMillis,
        to: UnixMillis,
        interval: Interval,
    ) -> Result<Vec<(UnixMillis, Counts)>, SinkError> {
        let level = Level::of(interval);
        let first = level.floor(from);
        let mut buckets: Vec<(UnixMillis, Counts)> = Vec::new();
        for piece in self.clean(level, first, level.ceil(to)) {
            self.read_piece(piece, link, Dimension::Total, &mut |at, bot, _, count| {
                let mut counts = Counts::default();
                counts.add(bot, count);
                buckets.push((level.floor(at), counts));
            })?;
        }
        Ok(bucket_series(first, to, interval, buckets))
    }

    fn breakdown(
        &self,
        link: LinkId,
        from: UnixMillis,
        to: UnixMillis,
        dimension: Dimension,
    ) -> Result<Vec<(String, Counts)>, SinkError> {
        let pieces = self.clean_range(from, to);
        let mut values: HashMap<Vec<u8>, Counts> = HashMap::new();
        for &piece in &pieces {
            self.read_piece(
                piece,
                link,
                dimension,
                &mut |_, bot, value, count| match values.get_mut(value) {
                    Some(counts) => counts.add(bot, count),
                    None => values.entry(value.to_vec()).or_default().add(bot, count),
                },
            )?;
        }
        let mut total = Counts::default();
        if dimension.has_implied() {
            for &piece in &pieces {
                self.read_piece(piece, link, Dimension::Total, &mut |_, bot, _, count| {
                    total.add(bot, count)
                })?;
            }
        }
        let mut entries: Vec<(String, Counts)> = values
            .into_iter()
            .map(|(value, counts)| (String::from_utf8_lossy(&value).into_owned(), counts))
            .collect();
        add_implied(dimension, &mut entries, total);
        Ok(entries)
    }

    fn top_links(
        &self,
        from: UnixMillis,
        to: UnixMillis,
        limit: usize,
    ) -> Result<Vec<(LinkId, Counts)>, SinkError> {
        let mut links: HashMap<LinkId, Counts> = HashMap::new();
        for (level, start, end) in self.clean_range(from, to) {
            for (at, source) in self.segments_in(level, start, end)? {
                let prefix = part_prefix(at, &source, Dimension::Total);
                for item in self.segments(level).prefix(prefix) {
                    let chunk = item.value().map_err(failed)?;
                    for row in ChunkReader::new(&chunk) {
                        links.entry(row.link).or_default().add(row.bot, row.count);
                    }
                }
            }
        }
        let mut entries: Vec<(LinkId, Counts)> = links.into_iter().collect();
        rank(&mut entries);
        entries.truncate(limit);
        Ok(entries)
    }
}
