//! The made-up world the RSVP generator draws from: topic themes, activities, cities, names and
//! venues.

/// The vocabulary groups draw topics from: themes of (urlkey, topic name).
pub(super) const THEMES: &[(&str, &[(&str, &str)])] = &[
    (
        "Tech",
        &[
            ("softwaredev", "Software Development"),
            ("python", "Python"),
            ("javascript", "JavaScript"),
            ("machine-learning", "Machine Learning"),
            ("data-science", "Data Science"),
            ("cloud-computing", "Cloud Computing"),
            ("web-development", "Web Development"),
            ("opensource", "Open Source"),
            ("artificial-intelligence", "Artificial Intelligence"),
            ("newtech", "New Technology"),
        ],
    ),
    (
        "Outdoors",
        &[
            ("hiking", "Hiking"),
            ("camping", "Camping"),
            ("backpacking", "Backpacking"),
            ("rock-climbing", "Rock Climbing"),
            ("kayaking", "Kayaking"),
            ("cycling", "Cycling"),
            ("trail-running", "Trail Running"),
            ("outdoors", "Outdoors"),
        ],
    ),
    (
        "Arts",
        &[
            ("photo", "Photography"),
            ("painting", "Painting"),
            ("writing", "Writing"),
            ("film", "Film"),
            ("theater", "Theater"),
            ("drawing", "Drawing"),
            ("poetry", "Poetry"),
        ],
    ),
    (
        "Business",
        &[
            ("entrepreneurship", "Entrepreneurship"),
            ("startup-businesses", "Startup Businesses"),
            ("marketing", "Marketing"),
            ("business-strategy", "Business Strategy"),
            ("small-business", "Small Business"),
            ("real-estate", "Real Estate"),
            ("investing", "Investing"),
            ("innovation", "Innovation"),
            ("design-thinking", "Design Thinking"),
        ],
    ),
    (
        "Wellness",
        &[
            ("yoga", "Yoga"),
            ("meditation", "Meditation"),
            ("fitness", "Fitness"),
            ("running", "Running"),
            ("nutrition", "Nutrition"),
            ("mindfulness", "Mindfulness"),
            ("self-improvement", "Self-Improvement"),
        ],
    ),
    (
        "Social",
        &[
            ("socialnetwork", "Social Networking"),
            ("singles", "Singles"),
            ("newintown", "New In Town"),
            ("making-friends", "Making Friends"),
            ("board-games", "Board Games"),
            ("trivia", "Trivia"),
            ("wine", "Wine"),
        ],
    ),
    (
        "Languages",
        &[
            ("language-exchange", "Language Exchange"),
            ("spanish", "Spanish Language"),
            ("french", "French Language"),
            ("german", "German Language"),
            ("japanese", "Japanese Language"),
            ("esl", "English as a Second Language"),
        ],
    ),
];

/// What a theme's events are called.
pub(super) const ACTIVITIES: &[&[&str]] = &[
    &[
        "Hack Night",
        "Lightning Talks",
        "Workshop: Intro to Python",
        "Monthly Meetup",
        "Study Group",
        "Demo Day",
    ],
    &[
        "Saturday Hike",
        "Sunrise Summit",
        "Weekend Camping Trip",
        "Bouldering Session",
        "Evening Ride",
        "Trail Run",
    ],
    &[
        "Photo Walk",
        "Open Studio",
        "Writers' Circle",
        "Film Night",
        "Sketch Meetup",
        "Poetry Open Mic",
    ],
    &[
        "Founders Breakfast",
        "Pitch Night",
        "Marketing Roundtable",
        "Investor Q&A",
        "Storytelling for Leadership: Hero's Journey",
        "Networking Mixer",
    ],
    &[
        "Morning Yoga in the Park",
        "Guided Meditation",
        "Bootcamp",
        "5K Fun Run",
        "Mindful Monday",
        "Healthy Cooking Class",
    ],
    &[
        "Board Game Night",
        "Pub Trivia",
        "Newcomers Social",
        "Wine Tasting",
        "Speed Friending",
        "Karaoke Night",
    ],
    &[
        "Language Exchange",
        "Spanish Conversation Hour",
        "Café Français",
        "Stammtisch",
        "Japanese Practice",
        "English Conversation Club",
    ],
];

/// City, state (US and Canada only, as Meetup sent it), country, latitude, longitude.
pub(super) const CITIES: &[(&str, Option<&str>, &str, f64, f64)] = &[
    ("New York", Some("NY"), "us", 40.75, -73.99),
    ("San Francisco", Some("CA"), "us", 37.77, -122.42),
    ("Chicago", Some("IL"), "us", 41.88, -87.63),
    ("Austin", Some("TX"), "us", 30.27, -97.74),
    ("Seattle", Some("WA"), "us", 47.61, -122.33),
    ("Boston", Some("MA"), "us", 42.36, -71.06),
    ("Denver", Some("CO"), "us", 39.74, -104.99),
    ("Salt Lake City", Some("UT"), "us", 40.76, -111.9),
    ("Toronto", Some("ON"), "ca", 43.65, -79.38),
    ("London", None, "gb", 51.51, -0.13),
    ("Berlin", None, "de", 52.52, 13.4),
    ("Paris", None, "fr", 48.86, 2.35),
    ("Madrid", None, "es", 40.42, -3.7),
    ("Amsterdam", None, "nl", 52.37, 4.9),
    ("Bangalore", None, "in", 12.97, 77.59),
    ("Tokyo", None, "jp", 35.69, 139.69),
    ("Sydney", None, "au", -33.87, 151.21),
];

pub(super) const FIRST: &[&str] = &[
    "Scott", "Maria", "James", "Aiko", "Priya", "Liam", "Sofia", "Noah", "Emma", "Lucas", "Olivia",
    "Mateo", "Chloe", "Arjun", "Hannah", "Diego", "Yuki", "Fatima", "Ethan", "Zoe", "Kwame",
    "Ines", "Omar", "Lena", "Raj", "Grace", "Tom", "Ana", "Ben", "Mia",
];
pub(super) const LAST: &[&str] = &[
    "Johnson", "Garcia", "Smith", "Tanaka", "Patel", "Murphy", "Rossi", "Kim", "Müller", "Dubois",
    "Silva", "Nguyen", "Brown", "Kowalski", "Okafor", "Lopez", "Chen", "Schmidt", "Singh",
    "Wilson",
];
pub(super) const VENUE_NAMES: &[&str] = &[
    "Central Library",
    "The Tech Hub",
    "Community Center",
    "Riverside Park",
    "WeWork",
    "The Brewery",
    "City Hall Plaza",
    "Café Central",
    "Trailhead Parking Lot",
    "Studio 54B",
];
