//! Slurm host lists: `node[01-03,07],login` expanded into host names, as `scontrol show
//! hostnames` expands them.

/// The hosts a Slurm host-list expression names, in order.
///
/// Each comma-separated item is a name with bracketed ranges (`rack[1-2]-n[01-02]` is the four
/// combinations); ranges keep their zero padding. Commas inside brackets separate ranges, not
/// hosts.
pub fn expand_hostlist(list: &str) -> Result<Vec<String>, String> {
    let mut hosts = Vec::new();
    for item in split_top_level(list)? {
        if item.is_empty() {
            continue;
        }
        hosts.extend(expand_item(&item)?);
    }
    if hosts.is_empty() {
        return Err(format!("{list:?} names no host"));
    }
    Ok(hosts)
}

/// Splits on commas outside brackets.
fn split_top_level(list: &str) -> Result<Vec<String>, String> {
    let mut items = vec![String::new()];
    let mut depth = 0usize;
    for c in list.chars() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| format!("{list:?} closes a bracket it never opened"))?;
            }
            ',' if depth == 0 => {
                items.push(String::new());
                continue;
            }
            _ => {}
        }
        items.last_mut().expect("one item at least").push(c);
    }
    if depth != 0 {
        return Err(format!("{list:?} leaves a bracket open"));
    }
    Ok(items.into_iter().map(|s| s.trim().to_owned()).collect())
}

/// One item: literal text and bracketed ranges, every combination in order.
fn expand_item(item: &str) -> Result<Vec<String>, String> {
    let Some(open) = item.find('[') else {
        return Ok(vec![item.to_owned()]);
    };
    let close = item[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or_else(|| format!("{item:?} leaves a bracket open"))?;
    let prefix = &item[..open];
    let rest = expand_item(&item[close + 1..])?;
    let mut out = Vec::new();
    for number in expand_ranges(&item[open + 1..close])? {
        for suffix in &rest {
            out.push(format!("{prefix}{number}{suffix}"));
        }
    }
    Ok(out)
}

/// `01-03,07` → `01`, `02`, `03`, `07` (padding kept).
fn expand_ranges(ranges: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for part in ranges.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let bad = || format!("{part:?} is not a number or a range like 01-04");
        let (a, b): (u64, u64) = (
            lo.parse().map_err(|_| bad())?,
            hi.parse().map_err(|_| bad())?,
        );
        if a > b {
            return Err(format!("range {part:?} runs backwards"));
        }
        if b - a > 1_000_000 {
            return Err(format!("range {part:?} names more than a million hosts"));
        }
        let width = lo.len();
        out.extend((a..=b).map(|n| format!("{n:0width$}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_scontrol_show_hostnames() {
        assert_eq!(expand_hostlist("node01").unwrap(), ["node01"]);
        assert_eq!(
            expand_hostlist("node[01-03,07],login").unwrap(),
            ["node01", "node02", "node03", "node07", "login"]
        );
        assert_eq!(
            expand_hostlist("rack[1-2]-n[8-9]").unwrap(),
            ["rack1-n8", "rack1-n9", "rack2-n8", "rack2-n9"]
        );
        assert_eq!(
            expand_hostlist("gpu[009-011]").unwrap(),
            ["gpu009", "gpu010", "gpu011"]
        );
        for bad in ["node[01-03", "node]1[", "node[3-1]", "node[a-b]", ""] {
            assert!(expand_hostlist(bad).is_err(), "{bad}");
        }
    }
}
