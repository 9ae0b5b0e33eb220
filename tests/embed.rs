//! The library as an app embeds it: a model built into the program, shared between threads,
//! and predictions that allocate nothing once warm on the text `predict_with` documents.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sprig::model::{Prediction, ProjectionModel, Scratch};

/// Counts the allocations of the current thread, and the bytes it holds, so that tests
/// running beside it do not count.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Bytes allocated minus bytes freed on this thread (negative if it frees what another
    /// thread allocated).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The most `LIVE` has been since `peak_of` last reset it.
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(grown: isize) {
    // `try_with`: a thread being torn down has no counter left, and counts nothing.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    let _ = LIVE.try_with(|n| {
        n.set(n.get() + grown);
        let _ = PEAK.try_with(|p| p.set(p.get().max(n.get())));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|n| n.set(n.get() - layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations_of(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// The bytes that `f` allocates on this thread and has not freed when it returns.
fn held_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.with(Cell::get);
    let value = f();
    (value, (LIVE.with(Cell::get) - before) as usize)
}

/// The most bytes that `f` had allocated on this thread and not yet freed at any moment
/// while it ran.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let value = f();
    (value, (PEAK.with(Cell::get) - before) as usize)
}

/// A model of the default shape, 1,120 × 128 (4 bits) × 4 (8 bits).
static MODEL: &[u8] = include_bytes!("fixtures/v2/tiny.sprig");

fn model() -> ProjectionModel {
    ProjectionModel::from_slice(MODEL).unwrap()
}

#[test]
fn predictions_allocate_nothing_once_warm_on_the_text_the_docs_name() {
    let model = model();
    let long = "thanks so much, see you soon! ".repeat(3_500);
    let free = [
        "thx so much!!",
        "",
        "  \t\n",
        "a\0b\x01c\x7f",
        "café à côté, ñ",
        "it’s “fine” — ok – ",
        "2×3 ÷ 4 ✓ ☕",
        "you earned it 😬🎉 👍🏽 ❤️",
        &long,
    ];
    let mut scratch = Scratch::default();
    for text in free {
        model.predict_with(&mut scratch, text);
        let n = allocations_of(|| {
            for k in [usize::MAX, 1, 3, 0] {
                std::hint::black_box(model.predict_top_with(&mut scratch, text, k));
            }
            std::hint::black_box(model.predict_with(&mut scratch, text));
        });
        assert_eq!(n, 0, "{:?}", &text[..text.len().min(40)]);
    }
    // The text the docs say goes through `tokenizers`: if it stops allocating, the docs
    // (and this list) can name more characters.
    for text in [
        "谢谢",
        "hi ł",
        "hi …",
        "go 🇫🇷",
        "dev 👨\u{200d}💻",
        "e\u{301}",
    ] {
        model.predict_with(&mut scratch, text);
        let n = allocations_of(|| {
            std::hint::black_box(model.predict_with(&mut scratch, text));
        });
        assert!(n > 0, "{text:?}");
    }
}

#[test]
fn one_model_serves_many_threads_with_a_scratch_each() {
    fn shared<T: Send + Sync>() {}
    shared::<ProjectionModel>();
    fn movable<T: Send>() {}
    movable::<Scratch>();

    let model = std::sync::Arc::new(model());
    let texts = [
        "thx so much!!",
        "where are you",
        "谢谢 👨\u{200d}💻",
        "",
        "running late 🏃",
    ];
    let mut scratch = Scratch::default();
    let alone: Vec<Vec<Prediction>> = texts
        .iter()
        .map(|t| model.predict_with(&mut scratch, t).to_vec())
        .collect();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let model = std::sync::Arc::clone(&model);
            std::thread::spawn(move || {
                let mut scratch = Scratch::default();
                (0..50)
                    .flat_map(|_| texts)
                    .map(|t| model.predict_with(&mut scratch, t).to_vec())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for thread in threads {
        let got = thread.join().unwrap();
        for (i, answer) in got.iter().enumerate() {
            let want = &alone[i % texts.len()];
            let bits = |p: &[Prediction]| -> Vec<(u32, u32)> {
                p.iter().map(|p| (p.label, p.score.to_bits())).collect()
            };
            assert_eq!(bits(answer), bits(want), "{:?}", texts[i % texts.len()]);
        }
    }
}

#[test]
fn a_loaded_model_holds_no_copy_of_its_first_layer_beside_its_pair_columns() {
    // The forward pass reads the first layer as four pair columns (A, B, A + B, A − B) of
    // `i8` per pair of inputs, a stride of 128 lanes: 4 · 560 · 128 bytes, which a loaded
    // model must hold. Columns A and B are the weights, so the model keeps no other copy:
    // one unpacked (1,120 · 128 bytes, as before) or even packed two to a byte (half that)
    // puts it over this bound, and the rest of the model (projection, labels, report,
    // the small later layer) takes about 18 KB.
    let columns = 4 * 560 * 128;
    let packed_copy = 1120 * 128 / 2;
    let (_model, held) = held_by(model);
    assert!(
        (columns..columns + packed_copy).contains(&held),
        "a loaded model holds {held} bytes"
    );
}

#[test]
fn loading_a_model_never_holds_its_first_layer_unpacked() {
    // Loading copies the file (`from_slice` owns its bytes) and builds the first layer's
    // pair columns (4 · 560 · 128 bytes, as above) while the copy is alive. The columns are
    // built from the packed section, so the first layer is never also held one weight to a
    // byte (1,120 · 128 bytes, which the old loading did, for a moment): the peak stays
    // below the file, the columns and half that, the rest of the model (about 18 KB) and
    // what reading the header takes included.
    let columns = 4 * 560 * 128;
    let unpacked = 1120 * 128;
    let (_model, peak) = peak_of(model);
    let bound = MODEL.len() + columns + unpacked / 2;
    assert!(peak < bound, "loading peaks at {peak} bytes, over {bound}");
}
