//! GEO commands: points stored in sorted sets, scored by their 52-bit
//! geohash (`types::geohash`). GEOADD is ZADD with computed scores (and is
//! published as that ZADD, as Redis propagates it); searches visit the nine
//! cells around the centre and check each member against the shape, so
//! results, distances and their order are Redis's.

use super::zsets::add::Flags;
use super::zsets::{self, parse_score};
use super::{CmdResult, Ctx, Error};
use crate::resp::Args;
use crate::types::geohash::{self, Areas, Shape};
use crate::types::zset::View;

pub const COMMANDS: &[(&str, super::Handler)] = &[
    ("geoadd", geoadd),
    ("geodist", geodist),
    ("geohash", geohash_cmd),
    ("geopos", geopos),
    ("georadius", georadius),
    ("georadius_ro", georadius_ro),
    ("georadiusbymember", georadiusbymember),
    ("georadiusbymember_ro", georadiusbymember_ro),
    ("geosearch", geosearch),
    ("geosearchstore", geosearchstore),
];

/// A longitude/latitude pair from two arguments.
fn long_lat(long: &[u8], lat: &[u8]) -> Result<(f64, f64), Error> {
    let (Some(x), Some(y)) = (parse_score(long), parse_score(lat)) else {
        return Err(Error::NotFloat);
    };
    if geohash::score_of(x, y).is_none() {
        return Err(Error::owned(format!(
            "ERR invalid longitude,latitude pair {x:.6},{y:.6}"
        )));
    }
    Ok((x, y))
}

/// Meters per unit.
fn unit(arg: &[u8]) -> Result<f64, Error> {
    let u = arg.to_ascii_lowercase();
    match u.as_slice() {
        b"m" => Ok(1.0),
        b"km" => Ok(1000.0),
        b"ft" => Ok(0.3048),
        b"mi" => Ok(1609.34),
        _ => Err(Error::msg(
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        )),
    }
}

/// A distance and its unit: `(value in the unit, meters per unit)`.
fn distance_arg(d: &[u8], u: &[u8], what: &'static str) -> Result<(f64, f64), Error> {
    let v = parse_score(d).ok_or_else(|| Error::owned(format!("ERR need numeric {what}")))?;
    if v < 0.0 {
        return Err(Error::msg(if what == "radius" {
            "ERR radius cannot be negative"
        } else {
            "ERR height or width cannot be negative"
        }));
    }
    Ok((v, unit(u)?))
}

/// A coordinate as Redis prints it: 17 decimals, trailing zeros dropped.
fn human(d: f64) -> String {
    let mut s = format!("{d:.17}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" { "0".into() } else { s }
}

/// The sorted set at `key`: `Ok(None)` when missing.
fn with_zset<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&View<'_>) -> R,
) -> Result<Option<R>, Error> {
    let stats = ctx.stats;
    let mut slot = ctx.db.key(key);
    Ok(zsets::read(&mut slot, stats)?.map(|z| f(&z)))
}

/// GEOADD key [NX|XX] [CH] longitude latitude member [...]: ZADD with the
/// points' geohashes as scores, published as that ZADD.
fn geoadd(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut first = 2;
    let mut f = Flags::default();
    while first < args.len() {
        let a = &args[first];
        if a.eq_ignore_ascii_case(b"nx") {
            f.nx = true;
        } else if a.eq_ignore_ascii_case(b"xx") {
            f.xx = true;
        } else if a.eq_ignore_ascii_case(b"ch") {
            f.ch = true;
        } else {
            break;
        }
        first += 1;
    }
    if !(args.len() - first).is_multiple_of(3) || (f.nx && f.xx) || first == args.len() {
        return Err(Error::Syntax);
    }
    let mut pairs = Vec::with_capacity((args.len() - first) / 3);
    for p in (first..args.len()).step_by(3) {
        let (x, y) = long_lat(&args[p], &args[p + 1])?;
        let score = geohash::score_of(x, y).unwrap_or(0);
        pairs.push((score as f64, &args[p + 2]));
    }
    zsets::add::add_scored(ctx, &args[1], f, &pairs)?;
    if ctx.dirty > 0 {
        let mut argv: Vec<Vec<u8>> = Vec::with_capacity(first + pairs.len() * 2);
        argv.push(b"zadd".to_vec());
        argv.extend(args.iter().take(first).skip(1).map(<[u8]>::to_vec));
        for (score, member) in pairs {
            argv.push(itoa::Buffer::new().format(score as u64).as_bytes().to_vec());
            argv.push(member.to_vec());
        }
        ctx.effect = super::Effect::Rewrite(argv);
    }
    Ok(())
}

/// GEODIST key member1 member2 [unit]
fn geodist(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let to_meter = match args.len() {
        4 => 1.0,
        5 => unit(&args[4])?,
        _ => return Err(Error::Syntax),
    };
    let scores = with_zset(ctx, &args[1], |z| z.score(&args[2]).zip(z.score(&args[3])))?;
    match scores.flatten() {
        Some((a, b)) => {
            let (p, q) = (geohash::decode_score(a), geohash::decode_score(b));
            let d = geohash::distance(p.0, p.1, q.0, q.1) / to_meter;
            ctx.out.bulk(format!("{d:.4}").as_bytes());
        }
        None => ctx.out.null(),
    }
    Ok(())
}

/// The scores of the members named from argument 2 on (`None` for a
/// missing member, or all of them for a missing key).
fn member_scores(ctx: &mut Ctx<'_>, args: &Args<'_>) -> Result<Vec<Option<f64>>, Error> {
    let members: Vec<&[u8]> = args.iter().skip(2).collect();
    Ok(with_zset(ctx, &args[1], |z| {
        members.iter().map(|m| z.score(m)).collect::<Vec<_>>()
    })?
    .unwrap_or_else(|| vec![None; members.len()]))
}

/// GEOHASH key [member ...]
fn geohash_cmd(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let scores = member_scores(ctx, args)?;
    ctx.out.array(scores.len());
    for s in scores {
        match s.and_then(geohash::hash_string) {
            Some(h) => ctx.out.bulk(&h),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// GEOPOS key [member ...]
fn geopos(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let scores = member_scores(ctx, args)?;
    ctx.out.array(scores.len());
    for s in scores {
        match s {
            Some(s) => {
                let (x, y) = geohash::decode_score(s);
                ctx.out.array(2);
                ctx.out.double_text(human(x).as_bytes());
                ctx.out.double_text(human(y).as_bytes());
            }
            None => ctx.out.null_array(),
        }
    }
    Ok(())
}

/// Which search command runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// GEORADIUS[_RO]: centre and radius from arguments 2-5.
    Coords { store: bool },
    /// GEORADIUSBYMEMBER[_RO]: a member and radius from arguments 2-4.
    Member { store: bool },
    /// GEOSEARCH, or GEOSEARCHSTORE (`store`: the destination is argument 1).
    Search { store: bool },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    None,
    Asc,
    Desc,
}

fn georadius(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    search(ctx, args, Form::Coords { store: true })
}

fn georadius_ro(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    search(ctx, args, Form::Coords { store: false })
}

fn georadiusbymember(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    search(ctx, args, Form::Member { store: true })
}

fn georadiusbymember_ro(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    search(ctx, args, Form::Member { store: false })
}

fn geosearch(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    search(ctx, args, Form::Search { store: false })
}

fn geosearchstore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    search(ctx, args, Form::Search { store: true })
}

/// One member found.
struct Found {
    member: Vec<u8>,
    score: f64,
    dist: f64,
    pos: (f64, f64),
}

/// The search commands: parse (in Redis's order: the key's type first,
/// then the centre and shape, then the options), collect the members
/// inside the shape, order, and reply or store.
fn search(ctx: &mut Ctx<'_>, args: &Args<'_>, form: Form) -> CmdResult {
    let src_at = if form == (Form::Search { store: true }) {
        2
    } else {
        1
    };
    let src = &args[src_at];
    // The source's type is checked before anything else.
    let exists = with_zset(ctx, src, |_| ())?.is_some();
    let member_pos = |ctx: &mut Ctx<'_>, m: &[u8]| -> Result<(f64, f64), Error> {
        with_zset(ctx, src, |z| z.score(m))?
            .flatten()
            .map(geohash::decode_score)
            .ok_or(Error::msg("ERR could not decode requested zset member"))
    };
    let mut center = None;
    let mut shape = None;
    let mut conversion = 1.0;
    let base = match form {
        Form::Coords { .. } => {
            center = Some(long_lat(&args[2], &args[3])?);
            let (r, c) = distance_arg(&args[4], &args[5], "radius")?;
            shape = Some(Shape::Radius(r * c));
            conversion = c;
            6
        }
        Form::Member { .. } => {
            if exists {
                center = Some(member_pos(ctx, &args[2])?);
                let (r, c) = distance_arg(&args[3], &args[4], "radius")?;
                shape = Some(Shape::Radius(r * c));
                conversion = c;
            }
            5
        }
        Form::Search { store } => 2 + usize::from(store),
    };
    let (mut withdist, mut withhash, mut withcoord, mut any) = (false, false, false, false);
    let mut order = Order::None;
    let mut count: i64 = 0;
    let mut store: Option<(&[u8], bool)> = match form {
        Form::Search { store: true } => Some((&args[1], false)),
        _ => None,
    };
    let (mut from_member, mut from_lonlat, mut by_radius, mut by_box) =
        (false, false, false, false);
    let is_search = matches!(form, Form::Search { .. });
    let may_store = matches!(
        form,
        Form::Coords { store: true } | Form::Member { store: true }
    );
    let mut i = base;
    while i < args.len() {
        let a = &args[i];
        let left = args.len() - i - 1;
        if a.eq_ignore_ascii_case(b"withdist") {
            withdist = true;
        } else if a.eq_ignore_ascii_case(b"withhash") {
            withhash = true;
        } else if a.eq_ignore_ascii_case(b"withcoord") {
            withcoord = true;
        } else if a.eq_ignore_ascii_case(b"any") {
            any = true;
        } else if a.eq_ignore_ascii_case(b"asc") {
            order = Order::Asc;
        } else if a.eq_ignore_ascii_case(b"desc") {
            order = Order::Desc;
        } else if a.eq_ignore_ascii_case(b"count") && left >= 1 {
            count = crate::util::num::parse_i64(&args[i + 1]).ok_or(Error::NotInteger)?;
            if count <= 0 {
                return Err(Error::msg("ERR COUNT must be > 0"));
            }
            i += 1;
        } else if may_store && a.eq_ignore_ascii_case(b"store") && left >= 1 {
            store = Some((&args[i + 1], false));
            i += 1;
        } else if may_store && a.eq_ignore_ascii_case(b"storedist") && left >= 1 {
            store = Some((&args[i + 1], true));
            i += 1;
        } else if form == (Form::Search { store: true }) && a.eq_ignore_ascii_case(b"storedist") {
            store = Some((&args[1], true));
        } else if is_search && a.eq_ignore_ascii_case(b"frommember") && left >= 1 && !from_lonlat {
            if exists {
                center = Some(member_pos(ctx, &args[i + 1])?);
            }
            from_member = true;
            i += 1;
        } else if is_search && a.eq_ignore_ascii_case(b"fromlonlat") && left >= 2 && !from_member {
            center = Some(long_lat(&args[i + 1], &args[i + 2])?);
            from_lonlat = true;
            i += 2;
        } else if is_search && a.eq_ignore_ascii_case(b"byradius") && left >= 2 && !by_box {
            let (r, c) = distance_arg(&args[i + 1], &args[i + 2], "radius")?;
            shape = Some(Shape::Radius(r * c));
            conversion = c;
            by_radius = true;
            i += 2;
        } else if is_search && a.eq_ignore_ascii_case(b"bybox") && left >= 3 && !by_radius {
            let (w, c) = distance_arg(&args[i + 1], &args[i + 3], "width")?;
            let (h, _) = distance_arg(&args[i + 2], &args[i + 3], "height")?;
            shape = Some(Shape::Box {
                width: w * c,
                height: h * c,
            });
            conversion = c;
            by_box = true;
            i += 3;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    if store.is_some() && (withdist || withhash || withcoord) {
        return Err(Error::msg(if is_search {
            "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        } else {
            "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        }));
    }
    let name = ctx.cmd.name;
    if is_search && !(from_member || from_lonlat) {
        return Err(Error::owned(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )));
    }
    if is_search && !(by_radius || by_box) {
        return Err(Error::owned(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"
        )));
    }
    if any && count == 0 {
        return Err(Error::msg("ERR the ANY argument requires COUNT argument"));
    }
    // Keeping the nearest N needs an order.
    if count != 0 && order == Order::None && !any {
        order = Order::Asc;
    }
    let (Some(center), Some(shape), true) = (center, shape, exists) else {
        // A missing source: nothing found.
        match store {
            Some((dst, _)) => {
                zsets::range::store(ctx, dst, &[], "");
                ctx.out.int(0);
            }
            None => ctx.out.array(0),
        }
        return Ok(());
    };
    let limit = if any { count as usize } else { 0 };
    let mut found = with_zset(ctx, src, |z| collect(z, &shape, center, limit))?.unwrap_or_default();
    match order {
        Order::Asc => found.sort_by(|a, b| a.dist.total_cmp(&b.dist)),
        Order::Desc => found.sort_by(|a, b| b.dist.total_cmp(&a.dist)),
        Order::None => {}
    }
    if count > 0 {
        found.truncate(count as usize);
    }
    match store {
        None => {
            let extra = usize::from(withdist) + usize::from(withhash) + usize::from(withcoord);
            ctx.out.array(found.len());
            for f in &found {
                if extra > 0 {
                    ctx.out.array(extra + 1);
                }
                ctx.out.bulk(&f.member);
                if withdist {
                    ctx.out
                        .bulk(format!("{:.4}", f.dist / conversion).as_bytes());
                }
                if withhash {
                    ctx.out.int(f.score as i64);
                }
                if withcoord {
                    ctx.out.array(2);
                    ctx.out.double_text(human(f.pos.0).as_bytes());
                    ctx.out.double_text(human(f.pos.1).as_bytes());
                }
            }
        }
        Some((dst, dist)) => {
            let mut items: Vec<(Vec<u8>, f64)> = found
                .into_iter()
                .map(|f| {
                    let s = if dist { f.dist / conversion } else { f.score };
                    (f.member, s)
                })
                .collect();
            items.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            let event = if is_search {
                "geosearchstore"
            } else {
                "georadiusstore"
            };
            let n = zsets::range::store(ctx, dst, &items, event);
            ctx.out.int(n as i64);
        }
    }
    Ok(())
}

/// The members inside `shape`, cell by cell in Redis's order, stopping at
/// `limit` (COUNT ... ANY) when it is not 0.
fn collect(z: &View<'_>, shape: &Shape, center: (f64, f64), limit: usize) -> Vec<Found> {
    let areas = Areas::of(shape, center);
    let mut found = Vec::new();
    let mut last: Option<usize> = None;
    for (i, cell) in areas.cells.iter().enumerate() {
        if cell.bits == 0 && cell.step == 0 {
            continue;
        }
        // At low precision neighbours can coincide: skip a repeat of the
        // cell just visited.
        if last.is_some_and(|l| areas.cells[l] == *cell) {
            continue;
        }
        if limit > 0 && found.len() >= limit {
            break;
        }
        let (min, max) = geohash::score_range(*cell);
        let (min, max) = (min as f64, max as f64);
        let start = z.count_while(|s, _| s < min);
        z.visit(start, z.len(), false, |m, s| {
            if s >= max {
                return false;
            }
            let pos = geohash::decode_score(s);
            if let Some(dist) = shape.contains(center, pos) {
                found.push(Found {
                    member: m.to_vec(),
                    score: s,
                    dist,
                    pos,
                });
            }
            !(limit > 0 && found.len() >= limit)
        });
        last = Some(i);
    }
    found
}
