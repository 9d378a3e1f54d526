//! The crisis cue rules: each a named regular expression over normalised text.
//!
//! Why regular expressions beside a classifier: a reviewer (story 5, the clinician) must be able
//! to read *why* an input was treated as a crisis, and to change the rule set without training
//! anything. Every rule has an id that ends up in the reason string of each detection.
//!
//! Rules are matched on [`normalize`]d text (lowercase, straight apostrophes, collapsed spaces).
//! Three lists:
//! - **cues** (`direct` and `indirect`), written as pattern families (the acts, objects and
//!   phrasings of one kind of cue) rather than sentences, so that an unseen sentence of a known
//!   family still matches. A *strong* cue is a detection unless suppressed; a *weak* one
//!   ([`CueRule::weak`]) needs the classifier's support when the classifier runs;
//! - **idioms**: look-alike phrases, figurative ("killing me", "could sleep for a year", "shot
//!   myself in the foot"), accidental ("cut myself chopping onions"), topical or about someone
//!   else ("suicide prevention", "my friend attempted suicide"), ordinary goodbyes and wills; a
//!   cue whose match overlaps an idiom's match is suppressed, and the suppression is recorded;
//! - **negation**: for cues marked `negatable`, a negator among the few words before the cue
//!   ("I would never hurt myself") suppresses it. "don't" is deliberately not a negator: "I don't
//!   want to kill myself but…" is still a conversation about suicide, and missing one costs more
//!   than a careful answer to a false alarm.

use regex::Regex;

/// Whether a cue names self-harm or suicide outright, or points at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CueKind {
    /// Suicide, self-harm, wanting to die, a method or a plan, said outright.
    Direct,
    /// Burdensomeness, goodbyes, giving things away, wanting to disappear for good.
    Indirect,
}

/// One cue rule.
pub struct CueRule {
    /// Stable id, named in reasons (`direct.kill_self`).
    pub id: &'static str,
    /// Direct or indirect.
    pub kind: CueKind,
    /// What the rule looks for, in words.
    pub describes: &'static str,
    /// Whether a negator just before the match suppresses it.
    pub negatable: bool,
    /// A weak cue ("I'm a burden", "no way out", "I've said my goodbyes") is common in ordinary
    /// distress and in look-alikes too, so alone it is not a detection: it needs the trained
    /// classifier's support (a probability of at least the weak threshold), or, in rules-only
    /// mode, it counts (rules alone lean to recall).
    pub weak: bool,
    /// The compiled pattern.
    pub regex: Regex,
}

/// A look-alike phrase that cancels an overlapping cue.
pub struct IdiomRule {
    /// Stable id, named in the audit trail (`idiom.suicide_topic`).
    pub id: &'static str,
    /// The compiled pattern.
    pub regex: Regex,
}

use CueKind::{Direct, Indirect};

/// Strong cue: a match is a detection unless suppressed.
const STRONG: bool = false;
/// Weak cue: see [`CueRule::weak`].
const WEAK: bool = true;

/// (id, kind, negatable, weak, description, pattern). Patterns are families, not sentences: each
/// names the acts, objects and phrasings of one kind of cue, so that an unseen sentence of the
/// same family still matches; the look-alike guards in [`IDIOMS`] carry the figurative uses.
const CUES: &[(&str, CueKind, bool, bool, &str, &str)] = &[
    (
        "direct.kill_self",
        Direct,
        true,
        STRONG,
        "killing or harming oneself",
        r"\b(?:kill|killing|killed|hang|hanging|hanged|hurt|hurting|harm|harming|cut|cutting|burn|burning|burned|burnt|shoot|shooting|stab|stabbing|drown|drowning|starve|starving|starved|poison|poisoning|choke|choking|strangle|strangling|suffocate|suffocating|off|unalive|unaliving)\s+my\s?self\b|\bkms\b|\bunaliv\w*",
    ),
    (
        "direct.self_harm",
        Direct,
        true,
        STRONG,
        "self-harm acts",
        r"\bself[- ]?(?:harm\w*|injur\w*|mutilat\w*)\b|\bcutting (?:again|my (?:arms?|wrists?|legs?|thighs?|skin|stomach))\b|\bcut (?:my|both) (?:arms?|wrists?|legs?|thighs?|skin)\b|\bslit(?:ting)? (?:my )?(?:wrists?|throat)\b|\b(?:scratch\w*|bit(?:e|ing)?|hit(?:ting)?|punch\w*|pull\w*|bang\w*|claw\w*)\b[^.!?]{0,40}\b(?:bleed|bleeds|bled|blood|broke|until it hurts)\b|\bcarv\w*\b[^.!?]{0,30}\binto my (?:arm|skin|leg|wrist|thigh)|\b(?:burn\w*|cut\w*|hurt\w*|took|taken|swallowed|overdos\w*)\b[^.!?]{0,40}\bon purpose\b|\brazor ?blades?\b|\bcut(?:ting)? (?:again|myself)\b|\b(?:hit|hitting|bang\w*) my head (?:against|on) (?:the )?wall\b|\b(?:burn\w*|cut\w*|scratch\w*) my (?:arms?|skin|wrists?|legs?|thighs?|stomach)\b|\bmaking myself (?:throw up|sick|bleed)\b|\bhold(?:ing)? (?:the|a) (?:knife|blade|razor) (?:to|against) my\b|\b(?:urges?|itch|craving) to (?:cut|burn myself|hurt myself|harm myself|self[- ]?harm)\b|\b(?:held|hold\w*|press\w*|put|pushed|drag\w*) (?:a |the |my )?(?:knife|blade|razor|scissors|lighter)\b[^.!?]{0,20}\b(?:against|to|into|across|on) my (?:arms?|wrists?|skin|throat|legs?|thighs?|stomach|neck)\b|\b(?:hit\w*|punch\w*|slap\w*|beat\w*) myself\b[^.!?]{0,30}\b(?:bruis\w*|bleed\w*|hurts|black and blue)\b",
    ),
    (
        "direct.suicide",
        Direct,
        true,
        STRONG,
        "suicide or suicidal thoughts",
        r"\bsuicid\w*|\bctb\b|\bsui(?:cidal)? ideation\b|\bsewer ?slide\b|\bsi thoughts\b|\b(?:relaps\w*|clean from|urges? to)\b[^.!?]{0,15}\bsh\b|\bsh\b[^.!?]{0,15}\b(?:relaps\w*|days clean|months clean|urges?)\b",
    ),
    (
        "direct.want_die",
        Direct,
        false,
        STRONG,
        "wanting to die or be dead",
        r"\b(?:want|wanna|wanted|wish|wishing|going|ready|plan|planning|need|hope|hoping|deserve|longing)\s+(?:to\s+)?(?:just\s+)?(?:die|be dead)\b|\bwish (?:i|that i) (?:was|were|could be) dead\b|\b(?:better|easier|happier) (?:off )?dead\b|\bfeel like dying\b|\bdeath (?:sounds|seems|feels|would be) (?:so )?(?:peaceful|better|easier|like a relief|like the only)|\bdying (?:is|seems|sounds|feels) (?:like )?(?:the only|better|easier|peaceful)|\b(?:want|wish) my heart (?:would|to) (?:just )?stop\b|\bwant to (?:just )?stop breathing\b|\bhope (?:a|the) (?:car|bus|truck|train) hits me\b|\bdie in my sleep\b|\bso (?:that )?i (?:can|could) (?:finally |just )?die\b|\brather (?:be dead|die) than (?:live|go on|keep|face|wake|be alive|spend another|feel)\b|\b(?:welcome|welcoming|long for|longing for|pray\w* for) death\b|\b(?:death|dying|being dead) (?:would|will|could) be (?:such )?(?:a )?(?:relief|mercy|release|peace|escape)\b|\bwish (?:someone|somebody) would (?:just )?kill me\b|\b(?:wish|want) (?:i could|to) (?:just )?die and (?:get it over|be done)\b|\b(?:hope|pray|wish)\w*\b[^.!?]{0,25}\b(?:(?:a|the) (?:car|bus|truck|lorry|train) (?:hits?|would hit) me|(?:get|got) (?:hit by|into) (?:a |an )?(?:car|bus|truck|train|accident|crash)\b[^.!?]{0,25}\b(?:over|die|dead|done|end)|i (?:get|got) killed)\b|\b(?:wouldn'?t|would not|won'?t) mind (?:dying|being dead|if i died|not waking up|if (?:a|the) (?:car|bus|truck|train) hit me)\b|\bif i (?:got (?:sick|ill|hit)|died|never woke up|didn'?t wake up)\b[^.!?]{0,30}\b(?:relieved|a relief|wouldn'?t mind|be glad|be grateful)\b",
    ),
    (
        "direct.rather_die",
        Direct,
        false,
        WEAK,
        "rather die (often hyperbole)",
        r"\b(?:rather|prefer to) (?:be dead|die)\b",
    ),
    (
        "direct.end_life",
        Direct,
        true,
        STRONG,
        "ending one's life",
        r"\bend(?:ing|ed)? (?:my (?:own )?life|it all|my existence)\b|\btak(?:e|ing|en) my (?:own )?life\b|\bend(?:ing)? (?:it|things|everything) (?:tonight|today|tomorrow|this (?:week|weekend)|after (?:the|this)|soon|for good|once and for all)\b|\bfinally do it\b|\bknow how to end it\b|\bplan (?:to|for how to) end it\b|\b(?:going to|gonna|will|i'?ll|ready to) (?:just )?end it\s*(?:[.!?]|$)",
    ),
    (
        "direct.end_things",
        Direct,
        true,
        WEAK,
        "ending it or things (often a relationship or a task)",
        r"\bend(?:ing)? (?:it|things|everything)\b",
    ),
    (
        "direct.not_live",
        Direct,
        false,
        STRONG,
        "not wanting to live",
        r"\b(?:don'?t|do not|no longer|never) want to (?:live|be alive|exist|survive|see another (?:morning|day))\b|\b(?:tired|sick) of (?:living|being alive|life|existing)\b|\bcan'?t (?:go on|keep) living\b|\b(?:not|isn'?t|is not|aren'?t) worth living\b|\blife (?:isn'?t|is not|is no longer|isn'?t really) worth\b|\b(?:no|any|the) (?:point|reason) (?:of|in|to|for) (?:living|being alive|live|life|me being (?:here|alive)|me to (?:live|stay|keep going|go on))\b|\bnothing (?:left )?to live for\b|\bstop existing\b|\bwant out of (?:this|my) life\b|\bdon'?t want to be alive\b|\b(?:don'?t|do not) (?:think i |really )?want to (?:live|be alive|exist|survive)\b|\bdone (?:with )?living\b|\bwhy (?:should|would) i (?:keep|go on|bother) living\b|\bpretend\w* (?:i|that i) want to (?:be here|live|be alive)\b|\b(?:point|reason) (?:of|in) (?:going on|carrying on|me (?:even )?existing|existing|staying alive)\s*(?:[.!?,]|$|anymore|when|if|like this|at all)|\bwhat'?s the point (?:of|in) (?:me|my life)\b",
    ),
    (
        "direct.method",
        Direct,
        true,
        STRONG,
        "a method or means",
        r"\boverdos\w*|\bhow many (?:\w+ )?(?:pills|tablets|meds|paracetamol|tylenol|ibuprofen|aspirin|sleeping pills|painkillers)\b[^.!?]{0,30}\b(?:take|kill|die|enough|wake)|\b(?:take|took|taking|swallow\w*|downed)\b (?:\w+ ){0,2}(?:every|a handful of|a bunch of|too many|the whole (?:bottle|box|pack) of|enough)\b[^.!?]{0,20}\b(?:pills?|tablets|meds|medication|painkillers|insulin)\b|\btak\w* extra insulin\b|\b(?:saved|saving|stockpil\w*|hoard\w*|collect\w*) (?:up )?(?:my |all my )?(?:\w+ )?(?:pills|meds|medication|tablets|painkillers|razors|blades)\b|\b(?:lethal|fatal|deadly) (?:dose|doses|amount|overdose)\b|\bdose of [^.!?]{0,30}\b(?:fatal|lethal)\b|\b(?:painless|quick|quickest|easy|easiest|surest|best) (?:ways?|methods?) to (?:die|go|end it|do it|kill myself)\b|\bways? to (?:die|kill myself|end it|end my life)\b|\bhow to (?:die|kill myself|end it|end my life|do it without)\b|\bmost painless way\b|\b(?:rope|noose)\b[^.!?]{0,40}\b(?:ready|for|tied|bought|hung|know what)\b|\bnoose\b|\b(?:bought|got|have) (?:a |the )?rope\b|\b(?:gun|pistol|barrel|rifle)\b[^.!?]{0,50}\b(?:my (?:head|mouth|temple)|on myself|myself)\b|\bjump(?:ing|ed)? (?:off|from|out of|in front of) (?:a |the |my |this |that |our )?(?:\w+ )?(?:bridge|building|roof|rooftop|cliff|balcony|window|garage|car park|platform|overpass|tower|train|bus|car|truck|ledge)\b|\b(?:step|stepping|stepped|walk|walking|throw|throwing|threw) (?:myself |out )?(?:in front of|into|onto|off|down) (?:a |the )?(?:train|bus|traffic|truck|car|tracks|sea|ocean|river|lake)\b|\bthrow(?:ing|n)? myself down (?:the )?stairs\b|\b(?:drive|driving|drove|swerv\w*|crash\w*|steer\w*) (?:my car |the car )?(?:into|off|in front of) (?:a |the |an )?(?:\w+ )?(?:river|tree|wall|barrier|bridge|cliff|road|traffic|truck|lake|sea|oncoming)\b|\bdrift into oncoming\b|\b(?:engine running|carbon monoxide|exhaust fumes)\b|\bbleed(?:ing)? out\b|\bdrink(?:ing)? (?:the )?bleach\b|\bplastic bag (?:over|on) my head\b|\bhead in a plastic bag\b|\b(?:bridge|building|roof|cliff|balcony|window|floor)\b[^.!?]{0,30}\bhigh enough\b|\bhow high\b[^.!?]{0,50}\b(?:die|dead|kill|sure)\b|\bhow long (?:it )?(?:takes|does it take) to (?:bleed|die|drown|suffocate)\b|\b(?:can|could) (?:you|i|someone) die from\b|\b(?:you|i|someone) (?:can|could) die from\b|\bpills\b[^.!?]{0,30}\b(?:lined up|ready|counted out|in front of me)\b|\bhow (?:much|many) (?:of )?(?:my |the )?(?:\w+ )?(?:pills|tablets|meds|medication|prescription|paracetamol|tylenol|insulin|painkillers)\b|\b(?:take|took|taking|swallow\w*|down\w*)\b (?:all (?:of )?my|all the|every one of my|the whole (?:packet|bottle|box|pack|strip) of|everything in the medicine)\b[^.!?]{0,20}\b(?:pills?|tablets|meds|medication|painkillers|antidepressants|prescription|sleeping pills|paracetamol|insulin|cabinet)\b|\b(?:saved|saving|stockpil\w*|hoard\w*|collect\w*) (?:up )?(?:my |all my )?(?:\w+ )?(?:prescriptions?|antidepressants|sleeping pills)\b|\bhow (?:tall|high) (?:is |are )?(?:the |that |this )?(?:\w+ )?(?:bridge|car park|multi-storey|parking garage|cliff)\b|\bhow long (?:it )?(?:takes|does it take|would it take) (?:for (?:someone|a body|you|me) )?to be found\b|\b(?:took|taken|swallowed|downed|had) (?:like |about |around |maybe |over |nearly |almost )?(?:[1-9]\d|\d{3}|twenty|thirty|forty|fifty|a hundred) (?:of )?(?:my |the )?(?:\w+ )?(?:pills|tablets|meds|painkillers|paracetamol|tylenol|ibuprofen|aspirin)\b|\bdose of [^.!?]{0,30}\b(?:would kill me|to kill me|it would take to die)\b|\bhow much (?:\w+ ){0,3}(?:can|would|does|do)\b[^.!?]{0,40}\b(?:before (?:it|the|my|your|a) (?:\w+ )?(?:shuts? down|fails?|stops?)|to (?:shut down|kill|fail))\b",
    ),
    (
        "direct.attempt",
        Direct,
        false,
        STRONG,
        "a past or planned attempt",
        r"\b(?:tried|try|trying|attempt\w*) (?:to )?(?:kill|hang|drown|overdose|end|take|poison|shoot|suffocate|hurt) (?:my ?self|my life|my own life|it all)\b|\bi (?:have |'?ve )?attempted (?:before|again|twice|once|last|\w+ (?:weeks?|months?|years?|days?) ago)\b|\b(?:crash|wreck|swerve|drive)\w* (?:the |my )?car\b[^.!?]{0,25}\b(?:not survive|never wake|die|so it'?s over)\b",
    ),
    (
        "direct.plan_time",
        Direct,
        false,
        STRONG,
        "a time set for it",
        r"\btonight is the night\b|\b(?:got|have|set|picked|chose|chosen) (?:a |the )?(?:date|day) (?:set )?for (?:when|it)\b|\bpick the day\b|\bgoing to finally do it\b|\bi'?m going to do it (?:tonight|today|tomorrow)\b",
    ),
    (
        "indirect.better_off_without",
        Indirect,
        false,
        STRONG,
        "others better off without them",
        r"\bbetter (?:off|place|world)(?: \w+){0,3} without (?:me|(?:a|an) \w+ like me)\b|\b(?:better|happier|easier|relieved|lighter|simpler|quieter|free|fine|relief|breathe easier)\b[^.!?]{0,60}\b(?:if i (?:just )?(?:(?:was|were) (?:gone|dead|not here|not around|out of the picture|never born)|(?:wasn'?t|weren'?t) (?:here|around|alive|in the picture)|didn'?t exist|stopped (?:existing|being around)|disappeared|died|never woke up)|without me|when i'?m (?:gone|dead|not here|not around)|once i'?m gone|after i'?m gone|with me gone|if my (?:desk|chair|room) (?:was|were) empty)\b|\b(?:life )?insurance(?: money)?\b[^.!?]{0,60}\b(?:than (?:me|i)|than with me|more than i)\b|\bfree (?:of|from) me\b|\bwithout me (?:in it|dragging|around)\b|\bthe world doesn'?t need me\b|\bwon'?t have to (?:deal with|worry about|put up with|pretend|cover for|be disappointed)\b[^.!?]{0,40}\b(?:much longer|soon|anymore|after (?:this|that|i)|again)\b|\bstop being (?:everyone'?s|a|anyone'?s|their) (?:problem|burden)\b|\b(?:won'?t|will not) be (?:a |anyone'?s |everyone'?s |their )?(?:burden|problem|weight)\b[^.!?]{0,40}\b(?:much longer|for long|soon|anymore|after)\b|\bburden\b[^.!?]{0,40}\b(?:won'?t last|much longer|fix that|not for long)\b|\b(?:weight|burden) on (?:anyone|everyone)'?s? shoulders\b|\b(?:heal|recover|move on|breathe)\w*\b[^.!?]{0,30}\bif i (?:wasn'?t|weren'?t|was not|were not) in (?:their|your|his|her|our) li(?:fe|ves)\b|\bwithout (?:people|someone|somebody) like me\b|\bif i died\b[^.!?]{0,40}\b(?:no ?one|nobody) would (?:have to|need to|be)\b|\b(?:better|happier|easier|kinder|simpler|lighter)\b[^.!?]{0,40}\bif i (?:just )?stopped\s*(?:[.!?]|$)",
    ),
    (
        "indirect.burden",
        Indirect,
        false,
        WEAK,
        "feeling a burden or worthless to others",
        r"\b(?:i'?m|i am|being|like i'?m|like|such) (?:a |such a |just a )?(?:burden|waste of (?:space|oxygen|air))\b|\bstop taking up space\b|\bdon'?t belong in this world\b",
    ),
    (
        "indirect.farewell",
        Indirect,
        false,
        WEAK,
        "goodbyes, last messages, notes",
        r"\b(?:goodbye|good-bye|farewell) (?:letters?|notes?|messages?|video)\b|\b(?:said|saying|say|said all) (?:my )?goodbyes?\b|\bthis is goodbye\b|\b(?:this is|it'?s) (?:my )?last (?:message|post)\b|\b(?:wrote|writing|written|left|leaving|leave) (?:a |my |the )?(?:\w+ )?(?:note|letters?)\b[^.!?]{0,50}\b(?:for (?:when|after)|when i'?m|explaining|so they know|table|for my|to my|for everyone|to everyone)\b|\btell (?:my |them |her |him )?\w* ?(?:i|that i) loved\b|\bthank you for (?:everything|trying|being)\b|\bthanks for (?:everything|trying)\b|\bwasn'?t (?:their|your|anyone'?s) fault\b|\bwhy i did it\b|\bgoodbye,? (?:everyone|all|world|everybody)\b|\bsorry i (?:couldn'?t|wasn'?t|could never) be (?:better|enough|stronger|more)\b|\b(?:none of (?:this|it) (?:is|was)|it'?s not|it isn'?t|it wasn'?t) (?:her|his|your|their|anyone'?s) fault\b|\bif you'?re reading this\b|\b(?:recorded|recording) (?:a )?(?:video|voice|audio)? ?messages? for\b|\b(?:wrote|written|writing) (?:my |our )?(?:\w+ )?(?:\w+ )?(?:a )?(?:note|letter)\b[^.!?]{0,30}\b(?:fault|explaining|after)\b|\btell (?:my |them |her |him )?\w* ?(?:i'?m|i am) sorry\b",
    ),
    (
        "indirect.arrangements",
        Indirect,
        false,
        WEAK,
        "final arrangements",
        r"\baffairs in order\b|\bloose ends\b|\b(?:wrote|written|writing|made|make|updated?|updating|drew up) (?:a |my )?will\b|\b(?:life insurance|beneficiar\w*)\b|\bpasswords?\b[^.!?]{0,50}\b(?:written down|for my|so (?:my|they)|sister|brother|partner|after)\b|\bnew home for (?:my )?(?:dog|cat|pets?)\b|\b(?:dog|cat|pets?|fish)\b[^.!?]{0,40}\b(?:new home|when i'?m not|after i'?m|whoever takes|when i'?m gone)\b|\bwho(?:ever)? (?:takes|will take) (?:him|her|them)\b|\bmy ashes\b|\bwon'?t need (?:them|it|my|to)\b|\b(?:bills|rent|debts?)\b[^.!?]{0,30}\bafter i'?m\b|\bcancell?ed (?:all )?my (?:subscriptions|accounts|plans)\b|\b(?:gave|given|giving|give) (?:my |our )?(?:dog|cat|pets?)\b[^.!?]{0,20}\bto\b|\bwho (?:should|will|gets|can have) (?:get |have )?my (?:things|stuff|belongings|car|savings)\b|\bleav(?:e|ing) my (?:things|stuff|belongings|car|savings) to\b|\blast wish\b|\b(?:found|find|finding) (?:a )?(?:new )?homes? for (?:my )?(?:dogs?|cats?|pets?)\b",
    ),
    (
        "indirect.when_gone",
        Indirect,
        false,
        STRONG,
        "after they are gone",
        r"\bwhen i'?m (?:gone|dead|not (?:here|around))\b|\bafter i'?m (?:gone|dead)\b|\bonce i'?m gone\b|\bfor after\b[^.!?]{0,5}$|\bif i (?:was|were) (?:gone|dead)\b",
    ),
    (
        "indirect.giving_away",
        Indirect,
        false,
        // Strong: a recognised warning sign; moving, selling and charity are guarded as idioms.
        STRONG,
        "giving possessions away",
        r"\bgiv(?:e|ing|en) away (?:all |most of |everything|my |the things)|\bgave (?:away )?(?:all |most of )?(?:my )?(?:things|stuff|belongings|possessions|\w+ and (?:my )?\w+) (?:away|to)\b|\bgiv(?:e|ing|en|ve) (?:my )?(?:things|stuff|belongings|possessions) (?:away|to)\b|\b(?:he|she|they)'?(?:ll)? need (?:it|them) more than (?:me|i)\b|\b(?:gave|given|giving|give) (?:all )?my (?:savings|money) to\b",
    ),
    (
        "indirect.not_around",
        Indirect,
        false,
        STRONG,
        "not being around much longer",
        r"\b(?:won'?t|will not|not going to|don'?t (?:plan on|plan to|expect to|think i'?ll|see myself)|no plans? (?:on|to)) (?:be )?(?:being )?(?:around|here|alive|there)\b[^.!?]{0,30}\b(?:much longer|for long|for much longer|next|by|to see|for (?:my|the|christmas|new year)|anymore|after|when|past)\b|\b(?:don'?t|do not) (?:plan on|plan to|expect to) (?:be|being) (?:here|around|alive)\b|\bnot (?:planning|going) to be (?:here|around|alive)\b|\b(?:won'?t|not going to|don'?t think i'?ll|don'?t expect to) (?:see|make it to|make it through|live to see|be alive for) (?:the end of|next|another|christmas|my birthday|the weekend)\b|\bnot be here anymore\b|\b(?:to|should|could) (?:just )?not be here\b|\bshouldn'?t be here\b|\bstop being (?:here|around|alive)\b|\bdon'?t want to be (?:here|around) (?:anymore|any more)\b|\bnot (?:be )?around much longer\b|\bbe (?:around|here|alive) (?:much longer|for (?:much )?longer)\b|\bstopped making plans\b|\bknow i won'?t be there\b|\b(?:can'?t|cannot|don'?t|do not) (?:picture|see|imagine) (?:myself|me) (?:being )?(?:alive|growing old|living (?:past|to|much)|mak(?:e|ing) it (?:to|past) (?:\d+|thirty|forty|next year|my \w+ birthday)|reaching \d+|turning \d+)\b|\b(?:can'?t|cannot) face being (?:around|here|alive)\b|\b(?:not (?:going to|gonna)|won'?t|don'?t plan to|don'?t intend to) stick around (?:to (?:deal with|see|face)|for (?:the aftermath|what|whatever))\b|\b(?:can'?t|cannot) (?:even )?(?:see|picture|imagine) (?:myself|me) in (?:\w+ )?(?:weeks?|days?)\b|\b(?:won'?t|will not) be (?:around|here|alive) (?:for|to see) (?:it|that|this|them)\s*(?:[.!?]|$)",
    ),
    (
        "indirect.sleep_forever",
        Indirect,
        false,
        STRONG,
        "sleeping and not waking up",
        r"\b(?:sleep|asleep|close my eyes)\b[^.!?]{0,25}\b(?:forever|for good|permanently|and never wake|and not wake|and stay asleep|and be gone|and not have to wake)\b|\b(?:never|not|don'?t want to|not have to|hope i don'?t|stop|stopped) wak(?:e|ing) up\b|\bstay asleep\b|\bhope i don'?t make it (?:through|to)\b|\bdon'?t want to see (?:another|tomorrow|the) (?:morning|day|sunrise)\b|\brest (?:permanently|forever|for good)\b|\b(?:sleep|asleep|close my eyes|lie down)\b[^.!?]{0,30}\b(?:and )?(?:not|never) (?:get up|wake up|come back)\b|\b(?:never|not) have to wake up\b|\b(?:hope|pray|wish)\w*\b[^.!?]{0,20}\b(?:don'?t|won'?t|wouldn'?t|never|not) wake up\b|\bnever open (?:them|my eyes) again\b|\b(?:rest|lie down|sleep)\b[^.!?]{0,20}\bnever (?:get up|wake up|come back)(?: again)?\b|\b(?:sleep|asleep)\b[^.!?]{0,20}\blet (?:it|everything) (?:all )?(?:be done|end|be over)\b|\btired of waking up(?: every (?:day|morning))?\s*(?:[.!?,]|$)|\b(?:disappointed|upset|sad|angry|annoyed) (?:that )?i (?:woke|wake|keep waking) up\b|\bwish i (?:hadn'?t|didn'?t|had not) (?:woken|woke|wake) up\b",
    ),
    (
        "indirect.disappear",
        Indirect,
        false,
        STRONG,
        "disappearing, leaving this world, for good",
        r"\b(?:disappear\w*|vanish\w*|be gone|was gone|were gone|check(?:ing)? out|let (?:myself )?go|switch off|go away)\b[^.!?]{0,25}\b(?:for good|forever|permanently|and never come back|for real this time)\b|\bleav(?:e|ing) this (?:world|life|earth|planet)\b|\b(?:take|taking|took) myself out\b|\bme out of the picture\b|\bi (?:was|were) out of the picture\b|\bcheck(?:ed|ing)? out of life\b|\bmake it official\b|\b(?:fade|fading|faded|slip|slipping) away\b[^.!?]{0,25}\b(?:for good|forever|permanently|never come back|and not come back)\b",
    ),
    (
        "indirect.leave_for_good",
        Indirect,
        false,
        WEAK,
        "leaving or vanishing (often a trip or a job)",
        r"\b(?:leave|leaving|left|go|going|vanish|vanished|disappear|disappeared)\b[^.!?]{0,25}\b(?:for good|forever|permanently)\b|\bout of the picture\b|\b(?:time|ready) (?:for me )?to (?:go|leave)\b|\bif i (?:vanished|disappeared)\b",
    ),
    (
        "indirect.not_exist",
        Indirect,
        false,
        STRONG,
        "wishing not to exist, wanting it over",
        r"\b(?:want|wish|wishing|like) (?:i could |to )?(?:just )?(?:not (?:to )?exist|stop existing|cease to exist|not be alive)\b|\bdon'?t want to exist\b|\b(?:tired of|sick of|done) existing\b|\b(?:want|wish|need) (?:my life|it all|everything|all of (?:it|this)) to (?:be over|end|stop)\b|\b(?:want|wish|need) (?:it|this|everything|the pain|it all) (?:all )?to (?:be over|end|stop) (?:forever|for good|permanently)\b|\bwaiting for it (?:all )?to end\b|\bpain to (?:stop|end) (?:for good|forever|permanently)\b|\bstop the pain (?:for good|forever)\b|\bonly (?:one )?way (?:out|to make (?:it|this|the pain) stop)\b[^.!?]{0,40}\b(?:take it|taking it|do it|going to)\b|\bmake it (?:all )?(?:end|stop) myself\b|\bnot (?:being alive|existing|being here)(?: anymore)?\b[^.!?]{0,30}\b(?:comfort\w*|relief|relieving|peace\w*|appeal\w*|tempting|calm\w*)\b|\b(?:fantasi[sz]\w*|daydream\w*|dream\w* about) (?:about )?(?:just )?(?:not (?:being alive|existing|being here)|being dead|dying|my (?:own )?death)\b|\b(?:want|wish|need) to (?:just )?stop\b[^!?]{0,25}\b(?:forever|for good|permanently)\b",
    ),
    (
        "indirect.want_over",
        Indirect,
        false,
        WEAK,
        "wanting it to end, born wishes",
        r"\b(?:want|wish|need) (?:it|this|everything|the pain|it all) (?:all )?to (?:be over|end|stop)\b|\bmake (?:it|this|the pain|everything) (?:all )?(?:end|stop)\b|\bwish i'?d never been born\b|\bwish i (?:had|was|were) never (?:been )?born\b|\bonly (?:one )?way out\b|\bthere'?s a way to make (?:it|this|all of this) stop\b|\bend the pain\b|\b(?:it'?s|this is|it will all be|all) over (?:soon|for me)\b|\bwill all be over\b|\bready for (?:it|this|everything) (?:all )?to (?:be over|end)\b|\bsoon i won'?t be\s*(?:[.!?]|$)|\bsoon i won'?t be (?:here|around|anything|anyone'?s)\b",
    ),
    (
        "indirect.ending_soon",
        Indirect,
        false,
        WEAK,
        "an end coming, absence, final things",
        r"\bwon'?t be long now\b|\bwon'?t be (?:anyone'?s|everyone'?s|a) (?:problem|burden)\b|\blast time i'?ll\b|\bwon'?t (?:be )?need(?:ing)?\b|\binstructions for\b|\bwithout me\b|\bthe end for me\b|\bmy own funeral\b|\b(?:picture|picturing|imagine|imagining) (?:myself|me) (?:hanging|dead|in a coffin|jumping|gone)\b|\bi (?:'?ve |have |had |now have |already have )?(?:got|have|made) a plan\b|\b(?:to|of|about|close to) jump(?:ing)?\b|\bwith a (?:razor|blade|knife)\b|\b(?:my|the) last (?:birthday|christmas|night|summer|new year)\b[^.!?]{0,15}\b(?:i'?ll|alive|on earth|here)\b|\bthis is my last (?:birthday|christmas|summer|new year)\b|\blast night i'?ll (?:ever )?spend\b|\balready gone\b|\b(?:don'?t|won'?t) need me (?:anymore|any more)\b|\bbe with (?:my )?(?:\w+ )?(?:dad|mum|mom|father|mother|grandma|grandpa|gran|nan|brother|sister|son|daughter|wife|husband|partner|friend)\b[^.!?]{0,20}\b(?:again|in heaven|wherever (?:he|she|they) (?:is|are))\b|\bsomewhere (?:no ?one|nobody) (?:can|could|will|would) (?:ever )?find me\b|\bwon'?t be (?:here|around) to \w+\b[^.!?]{0,30}\b(?:soon|anymore|much longer)\b|\bcount(?:ed|ing)? (?:out )?(?:the |my |all my )?(?:pills|tablets|meds)\b",
    ),
    (
        "indirect.no_one_miss",
        Indirect,
        false,
        STRONG,
        "no one missing them when gone",
        r"\b(?:no ?one|nobody|anyone|who)\b[^.!?]{0,20}\b(?:miss|notice|care)\b[^.!?]{0,30}\b(?:i'?m gone|i was gone|i were gone|i died|i was dead|i killed|gone for good|never woke up|stopped existing|i disappeared|i vanished)\b",
    ),
    (
        "indirect.no_one_notice",
        Indirect,
        false,
        WEAK,
        "no one noticing their absence",
        r"\b(?:no ?one|nobody|anyone|would anyone)\b[^.!?]{0,20}\b(?:miss|notice|care)\b[^.!?]{0,30}\bif i\b|\b(?:no ?one|nobody)\b[^.!?]{0,30}\bnotice\b[^.!?]{0,20}\bmy empty (?:chair|desk|seat|room|bed)\b",
    ),
    (
        "indirect.no_future",
        Indirect,
        false,
        WEAK,
        "no way out, no future, resolve",
        r"\bno way out\b|\bcan'?t see (?:a|any) (?:future|way forward)\b|\bno future (?:for me|where i)\b|\bnothing left for me\b|\bend of the road\b|\bcounting down the days\b|\b(?:i'?ve|i have) (?:already )?(?:decided|made (?:my|the) decision|made up my mind)\b|\bmy decision\b|\bmade (?:my )?peace\b|\bgive in to it\b|\b(?:done|tired of) (?:fighting|trying)\b|\b(?:want to|going to|gonna|ready to|i'?ll|i will|i should|i'?m going to|about to|just) stop (?:fighting|trying)\b|\bcan'?t (?:go on|keep going|do this anymore)\b|\b(?:can'?t|not going to) (?:keep )?(?:living|going on) like this\b|\bmatter of time\b|\bdon'?t want to be rescued\b|\bno reason (?:for me )?to (?:keep going|go on|stay)\b|\bwhy (?:even )?(?:keep going|go on|carry on)\b|\b(?:run|ran|running) out of reasons\b|\bno reasons? (?:left )?to (?:stay|live|keep going|go on)\b|\bdon'?t want to (?:keep going|go on|carry on)\b|\bsince i (?:decided|made (?:my|the) decision)\b|\b(?:i )?know how (?:this|it) ends for me\b|\bmy time (?:is|has) (?:come|up)\b|\bdon'?t (?:see myself|think i'?ll) mak(?:e|ing) it (?:to|past) \S+",
    ),
    (
        "indirect.wont_matter",
        Indirect,
        false,
        STRONG,
        "it will not matter soon",
        r"\b(?:it|nothing|none of this|none of it)\b[^.!?]{0,15}\b(?:won'?t|will not|wouldn'?t|will|doesn'?t) (?:even )?(?:matter|be my problem)\b[^.!?]{0,15}\b(?:soon|anymore|much longer|after)\b|\bnone of this will be my problem\b|\bsoon (?:it|none of (?:this|it)) (?:won'?t|will not|will) (?:matter|be my problem)\b|\bcan'?t (?:go on|keep) living like this\b[^.!?]{0,20}\band i'?m not going to\b|\bcan'?t keep living like this and\b|\bnot going to (?:keep living|go on living)\b",
    ),
    (
        "indirect.method_place",
        Indirect,
        false,
        STRONG,
        "drawn to a place of danger",
        r"\b(?:bridge|tracks|train tracks|ledge|platform|cliff|roof|balcony|edge)\b[^.!?]{0,60}\b(?:how easy|so easy|thinking about it|think about it|letting go|let go|waited for the train|jump)\b|\b(?:tracks|train|trains|rails)\b[^.!?]{0,50}\b(?:slow\w* down when|hear (?:one|it|the train|a train) coming|step(?:ping)? (?:in|onto|out))\b",
    ),
];

/// (id, pattern): phrases that look like a cue and are not one. A cue whose match overlaps one
/// of these is cancelled, and the reason names the guard.
const IDIOMS: &[(&str, &str)] = &[
    (
        "idiom.suicide_topic",
        r"\b(?:suicid\w*|self[- ]?harm\w*|overdos\w*) (?:prevention|hotline|helpline|awareness|rates?|statistics|risk (?:among|in|factors)|research|squad|in (?:teen\w*|adolescents|young people|students|doctors|farmers|men|women|veterans)|among\b)|\b(?:my|a|the|our|this|his|her) (?:\w+ )?(?:thesis|research|study|paper|essay|article|podcast|episode|documentary|novel|book|film|movie|class|course|training|lecture|talk|workshop|report|dissertation)\b[^.!?]{0,40}\b(?:suicid\w*|self[- ]?harm\w*|overdos\w*|kill (?:him|her|them)self)|\b(?:suicid\w*) (?:in|of) (?:the )?(?:novel|book|film|movie|play)\b|\b(?:died|dies|death|deaths|lost \w+) (?:by|to|from) suicide\b|\bhow to (?:respond|help|support)\b[^.!?]{0,60}\bsuicid\w*|\b(?:suicid\w*|self[- ]?harm) (?:risk (?:assessment|questions|screening)|assessment|screening|intervention|first aid)\b|\b(?:lethal|fatal|deadly) (?:dose|amount) of (?:caffeine|coffee|sugar|water|salt|chocolate|vitamin \w+|nicotine)\b|\b(?:if|when) someone (?:overdoses|is overdosing|is suicidal|self[- ]?harms)\b|\b(?:warning )?signs of (?:suicid\w*|self[- ]?harm\w*|overdos\w*)\b|\boverdos\w* (?:reversal|response|training|kits?)\b|\bnaloxone\b|\b(?:novel|book|film|movie|show|song|poem|play)'?s? (?:narrator|character|protagonist|hero|heroine)\b[^.!?]{0,50}",
    ),
    (
        "idiom.someone_else",
        r"\b(?:my (?:\w+ ){0,2}(?:friend|brother|sister|mum|mom|dad|father|mother|uncle|aunt|cousin|colleague|coworker|co-worker|patient|son|daughter|partner|boyfriend|girlfriend|husband|wife|student|client|roommate|neighbou?r)|he|she|they|someone|people|a (?:colleague|coworker|friend|patient|student)|a patient)\b[^.!?]{0,40}\b(?:attempted|committed|died by|is|was|had|has|been|having|came in after an?|after an?|with)\b[^.!?]{0,20}\b(?:suicid\w*|self[- ]?harm\w*|overdos\w*)|\bmy (?:\w+ ){0,2}(?:friend|brother|sister|mum|mom|dad|father|mother|uncle|aunt|cousin|son|daughter|partner|boyfriend|girlfriend|husband|wife|roommate) (?:overdosed|self[- ]?harm\w*)\b|\blost (?:\w+ ){1,2}(?:by|to) suicide\b",
    ),
    (
        "idiom.accident",
        r"\b(?:cut|cutting|burn|burned|burnt|hurt|stabbed) (?:myself|my (?:hand|finger|thumb|arm|leg|knee)) (?:shaving|cooking|chopping|running|lifting|playing|skiing|training|working out|at the gym|with a fork|on (?:the|a|my) (?:stove|oven|knife|paper|glass|pan|tray|kettle|iron|grill))\b|\b(?:cut|burn|burned|burnt|hurt|stabbed) myself (?:by accident|accidentally)\b|\baccidentally (?:cut|burn|burned|burnt|hurt|stabbed) (?:myself|my)\b|\b(?:nearly|almost|practically|could'?ve|could have) (?:have )?killed myself\b|\bkill(?:ed|ing)? myself (?:laughing|tripping|falling|at the gym|with (?:work|overtime))\b|\bshot myself in the foot\b|\bburn\w* myself out\b|\b(?:ground|earth|floor) (?:to )?(?:open up and )?swallow me\b|\bcrawl (?:into a hole|under (?:a rock|my desk))\b|\bjump(?:ing)? (?:ship|at the chance|to conclusions|through hoops)\b",
    ),
    (
        "idiom.die_for",
        r"\bdead meat\b|\bdie happy\b|\b(?:die|dying) for (?:a |an |some |my |the |one )?(?:\w+ )?(?:coffee|pizza|weekend|holiday|day off|nap|break|drink|beer|burger|chocolate|cake|cookie|sleep|vacation|chance|ticket|friend|family|country|you|her|him|them|it|that|this|those|these)\b|\b(?:die|dying) (?:to know|to see|to try|to get|to hear|to meet|to go|on (?:this|that) hill|of (?:embarrassment|laughter|boredom|shame|curiosity|cringe))\b|\bdying (?:of|from) (?:laughter|embarrassment|boredom|curiosity)\b",
    ),
    (
        "idiom.ending_a_relationship_or_task",
        r"\bend(?:ing|ed)? (?:it|things|everything) (?:with|between)\b|\bend(?:ing)? (?:the|this|our|my) (?:meeting|call|relationship|contract|membership|subscription|lease|gym)\b",
    ),
    (
        "idiom.moving_or_charity",
        r"\b(?:giv\w*|gave|give) away\b[^.!?]{0,60}\b(?:mov(?:e|ing)|charity|donat\w*|sell\w*|travel\w*|declutter\w*|graduat\w*|outgr\w*|retir\w*|new (?:flat|apartment|house|place)|kid down the street|old)\b|\b(?:mov(?:e|ing)|charity|donat\w*|sell\w*|travel\w*|declutter\w*|graduat\w*|outgr\w*)\b[^.!?]{0,60}\bgiv\w* away\b|\bgave away my old\b",
    ),
    (
        "idiom.ordinary_goodbye",
        r"\b(?:goodbyes?|last message|last post)\b[^.!?]{0,60}\b(?:last day|new job|retir\w*|holiday|vacation|trip|social media|twitter|instagram|facebook|account|group chat|see you|before i go on|moving)\b|\b(?:last day|new job|retir\w*|holiday|vacation|social media|twitter|instagram|facebook|group chat|moving)\b[^.!?]{0,60}\b(?:goodbyes?|last message)\b|\bgoodbye cards\b",
    ),
    (
        "idiom.ordinary_will",
        r"\b(?:wills?|life insurance)\b[^.!?]{0,60}\b(?:(?:was|were|got) born|bought (?:the|a|our) (?:house|home|flat)|got married|responsible|new baby|mortgage)\b|\b(?:born|bought the house|got married)\b[^.!?]{0,40}\b(?:wills?|life insurance)\b",
    ),
    (
        "idiom.figurative_sleep_or_trip",
        r"\bcould sleep (?:forever|for (?:a|an) \w+)\b|\bsleep for a (?:week|year|month|day)\b|\b(?:disappear\w*|vanish\w*|off the grid|go away)\b[^.!?]{0,40}\b(?:for a (?:week|month|weekend|while|bit|few|day|year)|camping|on (?:a )?(?:holiday|vacation|trip|beach)|to (?:a|the) (?:beach|cabin|island|mountains)|on a beach|into a cabin|this weekend)\b|\bcan'?t stay asleep\b|\bwake up (?:early|at \d|for|before)\b|\b(?:won'?t|will not|not going to) be (?:around|here|there|in)\b[^.!?]{0,40}\b(?:holiday|vacation|trip|travel\w*|conference|away|out of (?:town|office)|business|visiting|on leave)\b|\bwake up (?:late|hungover|with|to (?:a|my|the|an))\b",
    ),
    (
        "idiom.figurative_overdose_or_jump",
        r"\b(?:sugar|caffeine|coffee|carb|cuteness|information|screen ?time|netflix|serotonin|dopamine|vitamin \w+)\s+overdose\b|\b(?:if|when)\b[^.!?]{0,60}\b(?:one more|again|any more|anymore)\b[^.!?]{0,40}\bjump\w* (?:out (?:of )?|off )?(?:the |a |my )?(?:window|roof|building|bridge|balcony)\b|\boverdos\w* on (?:coffee|caffeine|sugar|netflix|tv|chocolate|candy|sweets|memes|work|news|social media|youtube|tiktok|anime|books|cake|pizza|sun|sunshine|energy drinks)\b|\bbungee\b[^.!?]{0,30}\bjump\w*|\bjump\w*[^.!?]{0,40}\bbungee\b|\bhigh dive\b|\bjump\w* off (?:a|the) bridge for (?:my|you|her|him|them)\b|\b(?:documentary|film|movie|show|article|news)\b[^.!?]{0,60}\bjump\w*|\b(?:character|avatar|player|mario|sims?|hero|villain)\b[^.!?]{0,40}\b(?:jump\w*|died|killed|fell)\b|\brope (?:for|to) (?:the |a |my )?(?:\w+ )?(?:swing|climbing|tent|boat|hammock|tree ?house|tug|washing|garden|camping)\b|\b(?:climbing|skipping|jump|tow) rope\b|\bjump\w* (?:in|into) (?:the |a )?(?:lake|pool|sea|river)\b[^.!?]{0,40}\b(?:charity|plunge|swim|fun|dare)\b",
    ),
    (
        "idiom.leaving_a_job_or_place",
        r"\b(?:leav\w*|left|quit\w*|go\w*|done with)\b[^.!?]{0,25}\b(?:the|this|my) (?:job|company|team|city|country|town|class|course|app|apps|platform)\b[^.!?]{0,20}\b(?:for good|forever|permanently)\b|\b(?:done with|quit\w*|delet\w*) (?:[a-z']+ ){0,4}?(?:apps?|accounts?|facebook|instagram|twitter|tiktok|social media|dating|group ?chats?|groups?|chats?|jobs?|smoking|drinking|vaping|sugar|carbs|gym|team|school|uni|men|women|guys|him|her|them|exes?)\b[^.!?]{0,20}\b(?:forever|for good|permanently)\b",
    ),
    (
        // A crisis told as the past, with the recovery said outright: "five years ago I was
        // suicidal … today I got my first promotion". The recovery words are required: a past
        // attempt with nothing better since is still a risk.
        "idiom.recovered_past",
        r"\b(?:(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|twenty|a few|several|many) (?:years?|months?) ago|used to|back in (?:high school|college|uni|school|\d{4})|in high school|when i was (?:a teen\w*|younger|in (?:high )?school|\d+|[a-z]+teen|twenty\w*)|the last time i\b[^.!?]{0,40}\bwas (?:\w+ ){0,2}(?:years?|months?) ago|years ago|the year after|last year|that was (?:in )?\d{4})\b[^\n]{0,220}?\b(?:proud|doing (?:well|better|great|good|ok(?:ay)?)|recover\w*|(?:been|stayed|i'?m) clean|love my life|got help|how far i'?ve come|genuinely (?:well|happy)|feeling strong|in a good place|happier than|glad i didn'?t|been well|well for (?:over )?(?:a|\w+) (?:decade|years?)|a job i love|haven'?t since)\b|\b(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|a few|several|many) (?:years?|months?) since i (?:last )?(?:self[- ]?harm\w*|cut|attempt\w*|tried)\b",
    ),
    (
        // Study, clinical work and reporting about suicide, overdose or self-harm.
        "idiom.study_or_clinical",
        r"\b(?:suicid\w*|self[- ]?harm\w*|self[- ]?injur\w*|overdos\w*)\b[^.!?]{0,60}\b(?:in clinical terms|essay|exam|assignment|coursework|report for|for (?:my|a|our) (?:\w+ )?(?:class|course|essay|report|thesis|exam|module))\b|\b(?:essay|exam|class|course|module|lecture|toxicolog\w*|toxicity|forensic\w*|pharmacy|pharmacology|psychology|nursing|medical)\b[^.!?]{0,100}?\b(?:suicid\w*|self[- ]?harm\w*|overdos\w*)|\b(?:patients?|customers?|clients?) (?:\w+ ){0,3}ask\w*\b[^.!?]{0,40}\bhow (?:many|much)\b|\b(?:patient|patients|client|inmate|he|she|they)\b[^.!?]{0,30}\bon suicide watch\b|\b(?:crime|detectives?|murder|police|forensic\w*)\b[^.!?]{0,60}\ba suicide\b|\ba suicide (?:from|or|and|case|scene|victim)\b|\b(?:cover|report\w*) (?:on )?suicides?\b|\bsuicides\b|\b(?:learn\w*|taught|teach\w*|lectures?|seminar|workshop|module) (?:about |on )?(?:\w+ ){0,3}(?:suicid\w*|self[- ]?harm\w*|overdos\w*)|\b(?:plant|houseplant|fern|cactus|succulent|phone|laptop|battery|car|printer|computer|goldfish|sourdough|code|server|tamagotchi) (?:has |just )?committed suicide\b|\bfuneral\b[^.!?]{0,60}\b(?:pre-?pa\w*|insurance|financially|costs?|savings)\b|\boverdose (?:damages?|affects?|cases|deaths|victims|patients|symptoms)\b|\bsuicide (?:barrier|nets?|fences?)\b|\b(?:ask|asking|talk to|screen\w*) (?:\w+ ){0,2}(?:patients|clients|students|people|someone|them)\b[^.!?]{0,40}\b(?:suicid\w*|self[- ]?harm\w*)",
    ),
    (
        // The word itself talked about: "why do people say 'unalive'?"
        "idiom.the_word_itself",
        r#"\b(?:say|says|said|saying|word|term|means?)\b[^.!?]{0,12}['"‘’“”]?(?:unalive|kms|sewerslide)\b"#,
    ),
    (
        // A joke, marked as one: "lmao i want to die", "kms i locked my keys in the car again 🙃".
        "idiom.laughing",
        r"(?:\b(?:lmao|lmfao|lol|haha\w*|rofl)\b|[😭💀🙃😂🤣])[^.!?\n]{0,6}\b(?:i want to die|i wanna die|kms|kill me|i'?m dead|shoot me)\b|\b(?:i want to die|i wanna die|kms|kill me now|shoot me now)\b[^.!?\n]{0,80}?(?:\b(?:lmao|lmfao|lol|haha\w*|rofl)\b|[😭💀🙃😂🤣])|\bwould die again\b|\bshoot me now\b[^.!?\n]{0,10}\b(?:my|the|this|another)\b|\b(?:so )?hungover\b[^.!?]{0,20}\bwish i (?:was|were) dead\b|\bnear[- ]death experience\b|\b(?:said|says|always said|joke\w*|used to say)\b[^.!?]{0,40}\brather die than\b|\brather die than have a party\b|\bnot waking up (?:until|till|before) \w+|\bnobody would (?:notice|care) if i (?:stopped|left|didn'?t|quit) (?:posting|replying|texting|messaging|going|showing up|coming)\b|\bwon'?t be (?:here|around)\b[^.!?]{0,40}\b(?:moving to|relocat\w*|new job|travel\w*|holiday|vacation|abroad|transferr?\w*)\b|\blast message (?:for|of) (?:tonight|today|the day|now)\b|\bsaid goodbye to (?:my |our |the )?(?:\w+ ){0,2}(?:home|house|flat|apartment|office|school|city|town|car|classroom)\b|\b(?:cat|dog|pet|vet|hamster|rabbit|horse)\b[^\n]{0,80}\bsay goodbye\b|\bend it all\W{0,4}(?:my|the|our) (?:\w+ ){0,2}(?:membership|subscription|contract|account|lease|diet)\b|\bhow many (?:\w+ )?(?:pills|tablets|ibuprofen|paracetamol|tylenol|aspirin|advil|painkillers) (?:can|should) i (?:safely )?take for\b|\bmaximum safe\b|\bsafe (?:daily )?dose\b|\bburden when i (?:ask|need|call|text|lean)\b|\bcan'?t do this anymore\W{0,4}(?:this|the|my) (?:job|course|class|degree|commute|project)\b|\bjump\w* out of (?:a |the )?(?:plane|aeroplane|airplane|helicopter)\b|\bskydiv\w*",
    ),
];
/// Words that, just before a negatable cue, suppress it.
const NEGATORS: &[&str] = &["never", "not", "won't", "wouldn't", "no", "nor", "without"];

/// The default cue rules, compiled.
pub fn default_cues() -> Vec<CueRule> {
    CUES.iter()
        .filter_map(|(id, kind, negatable, weak, describes, pat)| {
            Regex::new(pat).ok().map(|regex| CueRule {
                id,
                kind: *kind,
                describes,
                negatable: *negatable,
                weak: *weak,
                regex,
            })
        })
        .collect()
}

/// The default look-alike rules, compiled.
pub fn default_idioms() -> Vec<IdiomRule> {
    IDIOMS
        .iter()
        .filter_map(|(id, pat)| Regex::new(pat).ok().map(|regex| IdiomRule { id, regex }))
        .collect()
}

/// True when one of the `window` words before byte `start` of `text` negates.
pub fn negated_before(text: &str, start: usize, window: usize) -> Option<&'static str> {
    let before = text.get(..start)?;
    // A clause boundary ends the negation's reach.
    let clause = before
        .rsplit(['.', '!', '?', ',', ';', ':'])
        .next()
        .unwrap_or(before);
    let words: Vec<&str> = clause.split_whitespace().collect();
    let from = words.len().saturating_sub(window);
    words[from..].iter().find_map(|w| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
        NEGATORS
            .iter()
            .find(|n| **n == w || (n.ends_with("n't") && w == n.replace('\'', "")))
            .copied()
    })
}

/// Lowercase, straight apostrophes, one space between words. Byte offsets of matches refer to
/// this form, which is what reasons quote.
pub fn normalize(text: &str) -> String {
    let lower = text
        .to_lowercase()
        .replace(['\u{2019}', '\u{2018}', '`'], "'");
    lower.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_compiles() {
        assert_eq!(default_cues().len(), CUES.len());
        assert_eq!(default_idioms().len(), IDIOMS.len());
    }

    #[test]
    fn negation_looks_back_within_the_clause() {
        let t = "i would never kill myself";
        let start = t.find("kill").unwrap_or(0);
        assert_eq!(negated_before(t, start, 4), Some("never"));
        let t = "no, i want to kill myself";
        let start = t.find("kill").unwrap_or(0);
        assert_eq!(negated_before(t, start, 4), None);
    }
}
