//! Sending: due requests rendered onto connections with room, and written
//! with one `write` per connection and batch.

use std::io::ErrorKind as IoErrorKind;
use std::time::Instant;

use super::{Abandon, Conn, Ctx, InFlight, State, micros};
use crate::stats::ErrorKind;
use crate::transport::Transport;

impl<T: Transport> Ctx<'_, T> {
    /// Puts due requests on connections with room.
    pub(super) fn issue(&mut self, conns: &mut [Conn<T>], now: Instant) {
        if self.stopping {
            return;
        }
        let allowed = match &self.plan.timetable {
            Some(table) => table.due(now),
            None => self.limit,
        };
        let depth = self.depth();
        let per_connection = self.plan.requests_per_connection;
        let open_loop = self.plan.timetable.is_some();
        while self.sent < allowed {
            let Some(&index) = self.ready.front() else {
                break;
            };
            let conn = &mut conns[index];
            if conn.state != State::Open
                || conn.close_after
                || conn.in_flight.len() >= depth
                || conn.requests >= per_connection
            {
                self.ready.pop_front();
                conn.queued = false;
                continue;
            }
            let intended = match &self.plan.timetable {
                Some(table) => table.intended(self.sent),
                None => now,
            };
            let draw = self.maker.pick(self.plan.stride);
            self.maker.render(self.keys, draw, &mut conn.out);
            conn.in_flight.push_back(InFlight {
                intended,
                sent: now,
                draw,
            });
            if open_loop {
                self.rec
                    .send_lag
                    .saturating_record(micros(now.saturating_duration_since(intended)).max(1));
            }
            self.sent += 1;
            self.in_flight += 1;
            conn.requests += 1;
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(index);
            }
            if conn.in_flight.len() >= depth || conn.requests >= per_connection {
                self.ready.pop_front();
                conn.queued = false;
            } else if open_loop {
                // Spread open-loop requests over connections.
                self.ready.pop_front();
                self.ready.push_back(index);
            }
        }
    }

    pub(super) fn flush(&mut self, conns: &mut [Conn<T>], now: Instant) {
        let dirty = std::mem::take(&mut self.dirty);
        for &index in &dirty {
            let conn = &mut conns[index];
            conn.dirty = false;
            if conn.stream.is_some() {
                self.write(index, conn, now);
            }
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    pub(super) fn write(&mut self, _index: usize, conn: &mut Conn<T>, now: Instant) {
        while conn.out_pos < conn.out.len() {
            let Some(stream) = conn.stream.as_mut() else {
                return;
            };
            match stream.write(&conn.out[conn.out_pos..]) {
                Ok(0) => return self.drop_connection(conn, Abandon::All(ErrorKind::Closed), now),
                Ok(n) => conn.out_pos += n,
                Err(e) if e.kind() == IoErrorKind::WouldBlock => return,
                Err(e) if e.kind() == IoErrorKind::Interrupted => {}
                Err(_) => return self.drop_connection(conn, Abandon::All(ErrorKind::Closed), now),
            }
        }
        conn.out.clear();
        conn.out_pos = 0;
        // TLS: records rustls still holds (plain TCP never has any).
        if let Some(stream) = conn.stream.as_mut()
            && stream.has_pending()
        {
            match stream.flush_pending() {
                Ok(()) => {}
                Err(e) if e.kind() == IoErrorKind::WouldBlock => {}
                Err(_) => self.drop_connection(conn, Abandon::All(ErrorKind::Closed), now),
            }
        }
    }
}
