//! Whether an answer is the one expected for its key: the status, and the
//! `Location` against the key's own target or, for links with behaviour,
//! one of the destinations its rules and variants can choose.

use crate::keys::KeySet;
use crate::response::Head;
use crate::stats::ErrorKind;
use crate::traffic::Pick;

/// Which of the key's targets a correct answer went to (0: the key's own,
/// i + 1: its behaviour's destination i), or why the answer is wrong.
pub type Verdict = Result<usize, ErrorKind>;

/// Judges the answer `head` to a request for `pick`.
#[inline]
pub fn judge(keys: &KeySet, pick: Pick, head: &Head<'_>, unknown_status: u16) -> Verdict {
    let index = match pick {
        Pick::Unknown if head.status == unknown_status => return Ok(0),
        Pick::Unknown => return Err(ErrorKind::WrongStatus),
        Pick::Known(index) => index,
    };
    let redirect = matches!(head.status, 301 | 302 | 303 | 307 | 308);
    match keys.expected_status(index) {
        Some(expected) if expected != head.status => return Err(ErrorKind::WrongStatus),
        None if !redirect => return Err(ErrorKind::WrongStatus),
        _ => {}
    }
    if !redirect {
        return Ok(0);
    }
    let location = head.location.ok_or(ErrorKind::MissingLocation)?;
    keys.destination_of(index, location)
        .ok_or(ErrorKind::WrongTarget)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::behaviour::Behaviour;
    use crate::response::Body;

    fn head(status: u16, location: Option<&str>) -> Head<'_> {
        Head {
            status,
            location: location.map(str::as_bytes),
            close: false,
            head_len: 0,
            body: Body::Length(0),
        }
    }

    #[test]
    fn behaviour_destinations_and_nothing_else() {
        let plain = KeySet::parse(",a,https://own.example/a,302\n", "keys").unwrap();
        let behaviour = Behaviour::parse(
            r#"{"rules": [{"url": "https://rule.example/", "conditions": [{"type": "device", "value": "mobile"}]}],
                "variants": [{"url": "https://a.example/", "weight": 50}, {"url": "https://b.example/", "weight": 50}]}"#,
            "b.json",
        )
        .unwrap();
        let keys = plain.with_behaviour(Some(Arc::new(behaviour)));
        let known = Pick::Known(0);
        let verdict = |keys: &KeySet, h: Head<'_>| judge(keys, known, &h, 404);
        assert_eq!(
            verdict(&keys, head(302, Some("https://own.example/a"))),
            Ok(0)
        );
        assert_eq!(
            verdict(&keys, head(302, Some("https://rule.example/"))),
            Ok(1)
        );
        assert_eq!(verdict(&keys, head(302, Some("https://b.example/"))), Ok(3));
        for wrong in [
            "https://c.example/",
            "https://rule.example",
            "https://a.example/x",
        ] {
            assert_eq!(
                verdict(&keys, head(302, Some(wrong))),
                Err(ErrorKind::WrongTarget),
                "{wrong}"
            );
        }
        assert_eq!(
            verdict(&keys, head(301, Some("https://a.example/"))),
            Err(ErrorKind::WrongStatus)
        );
        assert_eq!(
            verdict(&keys, head(302, None)),
            Err(ErrorKind::MissingLocation)
        );
        // The same keys without their behaviour accept their own target only.
        assert_eq!(
            verdict(&plain, head(302, Some("https://rule.example/"))),
            Err(ErrorKind::WrongTarget)
        );
        assert_eq!(judge(&keys, Pick::Unknown, &head(404, None), 404), Ok(0));
        assert_eq!(
            judge(
                &keys,
                Pick::Unknown,
                &head(302, Some("https://a.example/")),
                404
            ),
            Err(ErrorKind::WrongStatus)
        );
    }
}
