//! The 80 COCO object classes the object detector knows, and the words a
//! `detect` prompt may use for them: each class name, its plural, and the
//! everyday words people use ("girl", "people", "bike", "sofa").

/// Class names in the detector's output order.
pub const LABELS: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// Everyday words for a class, beyond its name and regular plural.
const SYNONYMS: &[(&str, &str)] = &[
    ("people", "person"),
    ("persons", "person"),
    ("man", "person"),
    ("men", "person"),
    ("woman", "person"),
    ("women", "person"),
    ("girl", "person"),
    ("girls", "person"),
    ("boy", "person"),
    ("boys", "person"),
    ("child", "person"),
    ("children", "person"),
    ("kid", "person"),
    ("kids", "person"),
    ("baby", "person"),
    ("babies", "person"),
    ("guy", "person"),
    ("guys", "person"),
    ("lady", "person"),
    ("ladies", "person"),
    ("human", "person"),
    ("humans", "person"),
    ("bike", "bicycle"),
    ("bikes", "bicycle"),
    ("motorbike", "motorcycle"),
    ("motorbikes", "motorcycle"),
    ("plane", "airplane"),
    ("planes", "airplane"),
    ("aeroplane", "airplane"),
    ("aeroplanes", "airplane"),
    ("ship", "boat"),
    ("ships", "boat"),
    ("puppy", "dog"),
    ("puppies", "dog"),
    ("kitten", "cat"),
    ("kittens", "cat"),
    ("sofa", "couch"),
    ("sofas", "couch"),
    ("plant", "potted plant"),
    ("plants", "potted plant"),
    ("table", "dining table"),
    ("tables", "dining table"),
    ("television", "tv"),
    ("televisions", "tv"),
    ("phone", "cell phone"),
    ("phones", "cell phone"),
    ("mobile phone", "cell phone"),
    ("smartphone", "cell phone"),
    ("smartphones", "cell phone"),
    ("fridge", "refrigerator"),
    ("fridges", "refrigerator"),
    ("ball", "sports ball"),
    ("balls", "sports ball"),
    ("hair dryer", "hair drier"),
    ("knives", "knife"),
    ("sheep", "sheep"),
    ("skis", "skis"),
    ("scissors", "scissors"),
    ("doughnut", "donut"),
    ("doughnuts", "donut"),
    ("teddy", "teddy bear"),
];

/// The regular plural of a class name (its last word's).
fn plural(name: &str) -> String {
    if name.ends_with('s') || name.ends_with("ch") || name.ends_with("sh") || name.ends_with('x') {
        format!("{name}es")
    } else {
        format!("{name}s")
    }
}

/// The class a word names (lower case, single spaces), if any.
pub fn class_of(word: &str) -> Option<u32> {
    let target = SYNONYMS
        .iter()
        .find(|(w, _)| *w == word)
        .map_or(word, |(_, class)| class);
    LABELS
        .iter()
        .position(|&name| name == target || plural(name) == target)
        .map(|i| i as u32)
}

/// Every word `class_of` knows, for error messages: the class names (the
/// plurals and synonyms are implied).
pub fn names() -> String {
    LABELS.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_plurals_and_synonyms() {
        assert_eq!(class_of("person"), Some(0));
        assert_eq!(class_of("girl"), Some(0));
        assert_eq!(class_of("people"), Some(0));
        assert_eq!(class_of("cats"), Some(15));
        assert_eq!(class_of("buses"), Some(5));
        assert_eq!(class_of("wine glasses"), Some(40));
        assert_eq!(class_of("teddy bears"), Some(77));
        assert_eq!(class_of("sofa"), Some(57));
        assert_eq!(class_of("toothbrush"), Some(79));
        assert_eq!(class_of("toothbrushes"), Some(79));
        assert_eq!(class_of("unicorn"), None);
        // Every synonym names a class.
        assert!(SYNONYMS.iter().all(|(w, _)| class_of(w).is_some()));
    }
}
