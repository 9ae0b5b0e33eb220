#!/usr/bin/env python3
"""Generate the sprig "replies" reply-intent corpus.

Deterministic, stdlib only.  Regenerate from the repository root with:

    python3 corpora/replies/make_corpus.py

Writes, next to this script:
    corpus.jsonl       ~2,400 records {"id", "text"}; 5 seeds per intent also carry "label"
    corpus.gold.jsonl  the same records in the same order, every one with its gold "label"
    test.jsonl         ~600 labelled records {"text", "label"} built only from
                       base messages held out of the corpus

All base messages below were written by hand for this project (MIT OR Apache-2.0).
"""

import json
import os
import random
import re
import sys
import unicodedata

SEED = 20261128
CORPUS_PER_INTENT = 166   # non-ambiguous corpus records per intent
TEST_PER_INTENT = 42      # non-ambiguous test records per intent
CORPUS_AMBIGUOUS = 76     # ~3% of the corpus
TEST_AMBIGUOUS = 18       # ~3% of the test set
TEST_FRACTION = 0.25      # share of base messages held out for the test set
N_SEEDS = 5               # the first N_SEEDS bases of every intent are the seeds

# ---------------------------------------------------------------------------
# Hand-written base messages.  The first five of each list are clean, typical
# phrasings: they always go to the corpus split and are used as the seeds.
# ---------------------------------------------------------------------------
BASES = {
    "greeting": [
        "hi", "hello", "hey there", "good morning", "hi, how are you?",
        "yo", "sup", "what's up?", "hiya", "howdy", "morning!", "good afternoon",
        "good evening everyone", "hey hey", "hello hello 👋",
        "hi there, long time no see", "ça va?", "hey, how's it going",
        "how are you doing today?", "heyyy 👋", "hey stranger!", "hi friend 🙂",
        "hello, anyone around?", "what's good", "wassup dude", "g'morning ☀️",
        "morning sunshine", "hi hi", "greetings!", "hey you",
        "hello from the café 😊", "hey, hope you're well",
        "hi, hope your week is going ok", "evening all", "hey guys",
        "hey everyone, happy friday", "hi mom", "hey bro", "hey girl!", "ahoy",
        "hola!", "bonjour 🙂", "hi, it's me", "hey, you up?",
        "knock knock, anyone home?", "well hello there", "top of the morning",
        "how's your day going?", "how have you been?", "long time no talk!",
        "hey, what's new?", "hi!! so good to hear from you",
        "hey, how was your weekend?", "oh hey", "hi all 👋", "mornin",
        "good morning team", "howdy partner", "hey, how you holding up?",
        "yo what's happening", "hi, how's everything",
        "hello! how's life treating you?", "hey, just saying hi",
        "rise and shine!", "hey buddy, ça roule?",
        "hey! it's been ages, how are you and the family doing these days?",
        "good morning everyone, hope you all slept well and are ready for today",
        "hi there, just wanted to say hello and see how your first week went",
    ],
    "thanks": [
        "thanks", "thank you", "thanks so much!", "thank you very much",
        "thanks for your help",
        "thx", "ty", "tysm", "thank u", "thanks a lot", "much appreciated",
        "appreciate it 🙏", "thanks a ton!", "thanks man", "cheers",
        "cheers mate", "many thanks", "thank you!! you're the best",
        "thx for the ride", "ty ty", "thanks for dinner last night",
        "merci beaucoup", "gracias amigo", "thanks for the coffee ☕",
        "thanks for the café recommendation", "thank you so so much",
        "thanks, really appreciate it", "you're a lifesaver, thanks",
        "thanks for covering for me", "thank you for the gift!",
        "thanks for letting me know", "thanks for the heads up",
        "ty for the link", "thanks for checking in", "thank you kindly",
        "big thanks", "thanks a million", "i owe you one",
        "you rock, thanks 👍", "thank youuu", "thx a bunch",
        "thanks for being there", "thank you for your patience",
        "thanks for the update", "much obliged", "thanks again!",
        "thanks for the reminder", "thx dude", "appreciate you",
        "thanks for picking me up", "thanks for sharing",
        "thank you, that helps a lot", "so grateful, thank you 🙏",
        "thanks for the birthday wishes", "ty so much!!", "thanks in advance",
        "thanks for the notes from class", "cheers for that", "ta",
        "thank you for listening", "thanks for the advice",
        "thanks, you saved my day", "thanks for the info", "thanks heaps",
        "thx for the tip",
        "thank you so much for helping me move all those boxes on saturday, you're a legend",
        "thanks for dinner, the food was amazing and it was so good to catch up",
        "honestly can't thank you enough for looking after the dog while we were away",
    ],
    "apology": [
        "sorry", "i'm so sorry", "sorry about that", "my apologies",
        "i apologize",
        "sry", "soz", "my bad", "oops sorry", "so sorry about last night",
        "sorry, my fault", "i'm really sorry", "apologies for the confusion",
        "sorry for the late reply", "sorry i missed your call", "forgive me?",
        "sorry sorry sorry", "my mistake, sorry", "that was my fault",
        "i feel terrible, sorry", "sorry for snapping at you",
        "sorry if i upset you", "so sorry 🙏", "pardon me",
        "excuse me, sorry", "oops my bad 😬", "sorry for the typo",
        "sorry, wrong chat", "sorry wrong number", "sorry i forgot",
        "sorry i couldn't make it", "sorry for the mess",
        "i owe you an apology", "please accept my apologies",
        "sorry for being so quiet lately", "sorry, didn't mean that",
        "sorry, that came out wrong", "my bad dude", "sorry for the spam",
        "sorry about the noise", "sorry to bother you",
        "sorry for the trouble", "really sorry about your car",
        "sry for the wait", "apologies, i was wrong",
        "sorry, i totally forgot your birthday", "ugh sorry, my phone died",
        "sorry i was rude", "sorry for ghosting you", "désolé",
        "lo siento", "sorry for the short notice", "sorry, i dropped the ball",
        "mea culpa", "sorry for yelling", "sorry, i misread your message",
        "whoops, sorry about that!", "sorry, i broke your mug",
        "i'm sorry you had to deal with that",
        "sorry for the delay on the report", "sorry for leaving early",
        "sorry for the confusion earlier", "my sincere apologies",
        "sorry, i was being naïve",
        "i'm really sorry about what i said yesterday, i was stressed and took it out on you",
        "sorry i didn't reply sooner, things have been crazy at work this week",
        "so sorry for forgetting to pick you up, i completely lost track of time",
    ],
    "agree_yes": [
        "yes", "sure", "sounds good", "ok", "yeah definitely",
        "yep", "yup", "k", "okay!", "absolutely", "of course", "sure thing",
        "works for me", "deal", "count me in", "i'm in", "yes please",
        "for sure", "ya", "yeah", "ye", "definitely 👍", "totally agree",
        "agreed", "that works", "100%", "you got it", "perfect, let's do it",
        "sounds like a plan", "alright", "aight", "fine by me",
        "yes!! i'd love to", "why not", "go for it", "yes, that's right",
        "exactly", "correct", "np", "np, happy to help", "okie dokie", "kk",
        "yes ma'am", "roger that", "affirmative", "oui", "sí", "bet",
        "say less", "i'm down", "same here", "you're right", "true",
        "good idea", "yes, let's", "sure, why not?", "👍", "ok cool",
        "yes yes yes", "that's fine", "works", "i agree with you",
        "sounds great to me", "yeah ok", "sure, i can do that", "done",
        "ok will do",
        "yes, that sounds like a great plan, let's do it on saturday afternoon",
        "sure, i can bring the drinks and some snacks if you want",
        "yeah totally, i was thinking exactly the same thing this morning",
    ],
    "decline_no": [
        "no", "no thanks", "i can't make it", "not today",
        "i don't think so",
        "nope", "nah", "no way", "nah i'm good", "not really",
        "maybe another time", "i'll pass", "can't tonight", "not interested",
        "absolutely not", "hard pass", "not this time", "i'd rather not",
        "no can do", "nope, not happening", "i'm busy, can't", "rain check?",
        "negative", "no chance", "not for me, thanks", "nuh uh",
        "non merci", "no gracias", "i don't want to", "nah fam 🙅",
        "i already have plans", "not gonna work",
        "that doesn't work for me", "i can't do tuesday",
        "i'll skip this one", "count me out", "i'm out", "not now",
        "no, i'm tired", "no, that's wrong", "that's not right",
        "i disagree", "no it's not", "nah, too expensive",
        "i can't afford it", "pass", "no no no", "not a chance",
        "i'd love to but i can't", "i don't think i can", "unfortunately no",
        "i'm gonna say no", "no, let's not", "better not",
        "i won't be able to", "not feeling it", "nope, not me",
        "no, i didn't", "thanks but no thanks", "no, i'm good for now",
        "i'm not sure that's a good idea", "don't bother",
        "no, not the café again",
        "i'm good, no need",
        "thanks for the invite but i really can't make it this weekend, maybe next time",
        "no, i don't think that's a good idea, let's not do that again",
        "i'd love to come but i have to work late every night this week",
    ],
    "ask_time_when": [
        "what time?", "when?", "what time is the meeting?",
        "when are you free?", "when should we meet?",
        "what time works for you?", "when does it start?", "when's dinner?",
        "what time do you get off work?", "how long until you're done?",
        "when r u coming home", "what time's the movie",
        "when is the party?", "what day works?",
        "which day is better for you?", "when do you land?",
        "what time does the café open?", "when's your flight",
        "how soon can you get here?", "what time should i pick you up?",
        "when does the store close?", "when's the deadline?",
        "is it at 7 or 8?", "tonight or tomorrow?", "what time tomorrow?",
        "when will you be back?", "how late are they open?",
        "when did you get home?", "what time is it there?",
        "when's the game on?", "what's your eta?", "when do we leave?",
        "when is your birthday?", "what time is check-in?",
        "when are we doing this?", "any idea when?", "when's good for you",
        "what time is lunch", "morning or afternoon?",
        "when will it be ready?", "when does the train leave?",
        "how long will it take?", "when's the next bus?",
        "what time did you say?", "since when?", "when's the appointment?",
        "what time does the show end?", "when are you off?",
        "when's the wedding?", "what date is it on?", "monday or tuesday?",
        "when do classes start?", "when are you back in town?",
        "what time's kickoff", "when can i come by?", "at what time exactly?",
        "how early should we get there?", "when do you finish?",
        "eta on the pizza?", "what time do the doors open?",
        "when's the soirée?", "how many days till the trip?",
        "what hour should i come?", "when's it over?",
        "what time do you think you'll be done with the meeting this afternoon?",
        "when are you planning to come visit us, is next month still on?",
        "do you know what time the fireworks start tonight down by the river?",
    ],
    "ask_location_where": [
        "where are you?", "where?", "where should we meet?",
        "what's the address?", "where is it?",
        "where r u", "send me the address", "which café?",
        "where's the party at?", "where do you live again?",
        "which restaurant?", "where did you park?", "what's the location?",
        "drop a pin", "share your location pls", "where exactly?",
        "which entrance?", "what floor are you on?", "where are we going?",
        "where's the meeting", "which room?", "how do i get there?",
        "is it near the station?", "where'd you go?", "where are my keys?",
        "where can i find it?", "whereabouts?", "what part of town?",
        "which side of the street?", "where are you sitting?",
        "where's the nearest pharmacy?", "which gate?",
        "where are you staying?", "which platform?", "downtown or uptown?",
        "inside or outside?", "where did you put the charger?",
        "where's a good place for brunch?", "where do i park?",
        "where's the bathroom", "which bar are you at?",
        "what's the name of the place?", "where's the venue?",
        "which hotel?", "where are you guys?", "can you send the location?",
        "where do we meet up", "are you at home?", "is it far from here?",
        "which building?", "what street?", "where was that photo taken?",
        "where's the café you mentioned?", "what city are you in?",
        "front or back door?", "where are you from?", "where is everyone?",
        "where to?", "which table are you at?", "where's the pickup spot?",
        "near the crêperie or the bank?",
        "which exit should i take?", "you at the usual spot?", "where in the mall?",
        "where did you say the new ramen place was, near the old cinema?",
        "can you send me the exact address, my phone keeps taking me the wrong way",
        "where are you guys sitting, i just walked in and can't see you",
    ],
    "running_late": [
        "running late", "i'll be 10 minutes late", "running a bit late",
        "stuck in traffic", "going to be late",
        "running 5 min behind", "gonna be late 😩",
        "traffic is insane, gonna be late", "missed the bus, will be late",
        "train is delayed", "late again, ugh", "start without me",
        "save me a seat, running late", "might be a few mins late",
        "held up at work", "stuck in a meeting, will be late",
        "my flight got delayed", "traffic is terrible",
        "overslept!! be there asap", "give me 15 more minutes",
        "running behind schedule", "late late late", "the subway is stuck",
        "i'm late, go ahead without me", "won't make it on time",
        "gonna be a little late", "delayed by half an hour",
        "can't find parking, gonna be late",
        "still at the office, running late", "bus broke down",
        "my alarm didn't go off", "be there by 8:30 instead of 8",
        "leaving work late today", "ugh, late for class",
        "running late, order for me", "late by 10",
        "will be late for dinner", "roads are jammed",
        "accident on the highway, i'll be late",
        "stuck behind a tractor lol", "the meeting ran over, i'll be late",
        "hold the table, running late", "i'm behind, 10 more min",
        "won't be there till 7", "late!! start the movie without me",
        "taking longer than expected", "can't get away yet",
        "still getting ready", "just woke up 😬", "delayed, new eta 6pm",
        "ferry's late", "missed my train", "running late as usual",
        "kids made me late", "my uber cancelled, gonna be late",
        "gonna miss the start", "i'll be late to the café",
        "got caught up, late", "traffic jam on the bridge 🚗",
        "train's stuck outside the station", "need 20 more minutes",
        "still in the shower, running late",
        "late, my bike got a flat", "be there closer to 9",
        "traffic on the ring road is a nightmare, i'll be at least twenty minutes late",
        "the babysitter showed up late so i'm going to be about half an hour behind",
        "still waiting for the bus, it hasn't come in twenty minutes, i'll be late",
    ],
    "on_my_way": [
        "on my way", "omw", "leaving now", "be there in 5 minutes",
        "almost there",
        "heading out now", "just left", "on the way", "coming!",
        "i'm coming", "otw", "walking over now", "just got in the car",
        "pulling up now", "i'm here", "i'm outside", "parking now",
        "2 min away", "5 mins away", "just around the corner",
        "on the bus now", "getting on the train", "en route",
        "leaving the house now", "headed your way", "be right there",
        "coming down now", "on my way home", "heading home",
        "nearly there", "just passed the bridge", "i'm at the door",
        "turning onto your street", "leaving work now", "out the door",
        "in the cab", "getting an uber now", "i'll be there soon",
        "walking in now", "just landed", "boarding now",
        "omw to the café", "coming over now", "be there shortly",
        "i'm downstairs", "on the highway now", "just got off the train",
        "hopping on my bike now", "coming to get you", "leaving in 2",
        "on my way back", "heading over", "look for the red car",
        "5 more stops", "i'm in the lobby", "just parked", "coming up now",
        "i'm nearby", "leaving the gym now", "almost home",
        "🚗💨 zooming over", "here, come down", "at the gate now",
        "walking to the station now",
        "just left the house, should be at yours in about fifteen minutes",
        "on my way now, i'll text you when i'm parked outside",
        "i'm on the train, getting off at the next stop and walking over",
    ],
    "love_affection": [
        "love you", "i love you", "miss you", "love you too",
        "i miss you so much",
        "ily", "ily2", "❤️", "love ya", "xoxo", "sending hugs",
        "miss you already", "you mean the world to me",
        "can't wait to see you ❤️", "thinking of you",
        "you're the best thing in my life", "love you more", "mwah 😘",
        "hugs and kisses", "you're so sweet", "i adore you",
        "my heart is yours", "missing you tonight",
        "you make me so happy", "love you lots", "love u babe",
        "you're amazing, babe", "i'm so lucky to have you",
        "can't stop thinking about you", "😘😘",
        "love you to the moon and back", "big hug", "cuddles?",
        "you're my favorite person", "je t'aime", "te quiero",
        "you're adorable", "miss your face", "wish you were here",
        "i love us", "you complete me", "love you always",
        "you're my everything", "hug me", "aww you're sweet", "💕",
        "i like you a lot", "you're beautiful", "can't wait to hold you",
        "i'm crazy about you", "forever yours", "love you, sweetie",
        "you light up my day", "i need a hug from you",
        "sending love your way", "hugs!!", "you're the love of my life",
        "i ❤️ you", "kisses", "be mine?", "you're my person",
        "mon amour 💕", "my favorite human",
        "you're my sunshine ☀️",
        "i just wanted to tell you that i love you and i'm so grateful for you",
        "missing you so much today, can't wait until you're home again",
        "you're the best thing that ever happened to me, never forget that",
    ],
    "congrats": [
        "congrats!", "congratulations!", "well done",
        "congrats on the new job", "so proud of you",
        "congratz", "omg congrats 🎉", "yay congratulations", "way to go!",
        "nice work", "you did it!", "happy birthday!! 🎂",
        "happy anniversary", "great job", "bravo", "kudos",
        "congrats on the promotion", "congrats on graduating 🎓",
        "congrats on the baby!", "congrats to you both",
        "super proud of you!!", "you nailed it", "you earned it",
        "well deserved", "huge congrats", "congrats, you deserve it",
        "félicitations!", "mazel tov", "cheers to you 🥂",
        "congrats on passing your driving test",
        "amazing news, congrats", "so happy for you",
        "that's awesome news!", "hats off to you",
        "congrats on the engagement 💍", "you crushed it", "killed it!",
        "congrats on the marathon", "what an achievement",
        "congrats on the new house", "congrats champ",
        "woohoo, well done", "high five!", "proud of you, kiddo",
        "congrats on your exam results", "all that hard work paid off",
        "congrats, dr. smith!", "nice one!", "great news, congrats 🎉",
        "congrats on the win", "good job today", "you're a star",
        "three cheers!", "look at you go!",
        "congrats on your first paycheck", "best of luck in the new role",
        "happy graduation day", "bravo, maestro 👏",
        "congrats on the scholarship!", "you smashed it 💪", "well played", "so stoked for you!", "congrats on finishing your thesis", "happy retirement!",
        "congratulations on the new job, they're so lucky to have you on the team!",
        "huge congratulations to you both on the wedding, it was a beautiful day",
        "just heard you passed the bar exam, that's incredible news, well done!",
    ],
    "laugh_funny": [
        "lol", "haha", "that's hilarious", "lmao", "😂",
        "hahaha", "lolol", "rofl", "😂😂😂", "lmaooo", "i'm dying 😂",
        "omg i can't", "hilarious", "so funny", "that's so funny lol",
        "haha good one", "you're killing me", "lol what", "hahaha stop",
        "i'm crying", "🤣", "ha!", "lol true", "that's gold", "lmfao",
        "bahaha", "too funny", "haha nice",
        "i laughed way too hard at that", "dead 💀", "hehe",
        "haha classic", "lollll", "i snorted", "that meme 😂",
        "funniest thing i've seen all day",
        "stop it, i'm laughing so hard", "xD", "hah",
        "haha you're ridiculous", "lol same", "hahaha oh no",
        "lmao what did i just read", "that's comedy", "so dumb lol",
        "kek", "jajaja", "mdr", "ptdr 😂", "i can't breathe 😂",
        "ahahaha", "lol you wish", "that's priceless", "haha touché",
        "lol the dog", "the naïve kid in that video lol",
        "lol, classic you", "that joke tho", "i'm in tears lmao",
        "roflmao", "🤣🤣", "he fell in the fountain 😂",
        "haha what a clown", "that's too good 😆",
        "hahaha i can't believe he actually said that in front of everyone",
        "that video of the cat falling off the table has me crying with laughter",
        "lol i've watched that clip like ten times and it's still funny",
    ],
    "goodbye": [
        "bye", "goodbye", "see you later", "good night",
        "talk to you tomorrow",
        "cya", "ttyl", "later!", "see ya", "gotta go", "gtg", "brb",
        "night night", "gn", "take care", "catch you later",
        "peace out ✌️", "see you soon", "have a good one", "bye bye",
        "sleep well", "sweet dreams", "until next time", "farewell",
        "see you tomorrow", "i'm off, bye", "talk soon",
        "have a great weekend", "see you at work", "gotta run", "adios",
        "au revoir", "ciao", "later alligator", "bye for now",
        "logging off", "heading to bed, night", "nighty night 😴",
        "take it easy", "see you monday", "have a safe flight", "ok bye",
        "catch ya", "g2g", "leaving the chat", "signing off",
        "see you around", "bye guys 👋", "enjoy your trip!", "speak later",
        "hasta luego", "à bientôt", "til tomorrow", "ok night",
        "gn everyone", "have a nice evening", "good night, sleep tight",
        "that's all for today, bye", "cheerio", "ttfn",
        "off to sleep, night all", "see you next week",
        "bye, drive safe", "later, have fun",
        "ok i'm going to head to bed now, talk to you tomorrow, good night",
        "it was so nice to see you today, safe travels and see you soon",
        "i have to go now but let's catch up properly next week, bye!",
    ],
    "request_call": [
        "call me", "can you call me?", "give me a call",
        "call me when you can", "can we talk on the phone?",
        "call me back", "call me asap", "ring me", "pls call",
        "can i call you?", "free for a quick call?", "facetime?",
        "hop on a call?", "give me a ring", "phone me",
        "can you call mom?", "call me tonight", "call when you land",
        "call me, it's urgent", "can we video chat?", "zoom in 5?",
        "quick call?", "mind if i call?", "got a sec to talk?",
        "call me after work", "are you free to talk?",
        "need to talk, call me", "pick up the phone!",
        "answer your phone", "i'll call you in 10",
        "can i ring you later?", "call me on my cell", "skype later?",
        "let's hop on the phone", "buzz me when you're up",
        "call the office", "voice call?",
        "let's talk tonight, call me at 9", "can we talk?",
        "do you have five minutes for a call", "call me when you get this",
        "ring me up", "facetime me later", "video call this weekend?",
        "call me after the meeting", "can you call the restaurant?",
        "i'll phone you later", "call me pls 🙏",
        "hit me up on the phone", "let's chat on the phone",
        "i'd rather talk, can i call?", "give us a bell",
        "drop me a call", "call me when you wake up", "ring me back",
        "call me, i'm bored", "can i call you real quick?",
        "are you around for a call?", "call the café and book a table",
        "📞?", "phone call later?",
        "call me on whatsapp", "ring me at lunch", "can you phone the landlord?",
        "can you give me a call when you get a minute, i need to ask you something",
        "call me when you're out of the meeting, it's about the weekend plans",
        "i'd rather explain this on the phone, are you free for a quick call later?",
    ],
}

# Genuinely ambiguous messages, each with our best single gold label.
AMBIGUOUS = [
    ("ok thanks, on my way", "on_my_way"),
    ("sorry running late", "running_late"),
    ("sorry, can't make it tonight", "decline_no"),
    ("no, sorry", "decline_no"),
    ("thanks, bye!", "goodbye"),
    ("love you, bye", "goodbye"),
    ("goodnight my love", "goodbye"),
    ("haha thanks", "thanks"),
    ("lol sorry", "apology"),
    ("yes! congrats!!", "congrats"),
    ("hey, where are you?", "ask_location_where"),
    ("hi, call me when you're free", "request_call"),
    ("thanks, call me later", "request_call"),
    ("ok see you at 7", "agree_yes"),
    ("omw, where are you?", "ask_location_where"),
    ("running late, what time does it start?", "ask_time_when"),
    ("sorry i missed your call, call me back", "request_call"),
    ("haha yes", "agree_yes"),
    ("no lol", "decline_no"),
    ("thanks babe, love you", "love_affection"),
    ("congrats, love you!", "congrats"),
    ("sure, on my way", "on_my_way"),
    ("yes, running 5 min late", "running_late"),
    ("sorry, what time?", "ask_time_when"),
    ("sorry, where?", "ask_location_where"),
    ("bye, thanks for everything", "thanks"),
    ("hello? where are you", "ask_location_where"),
    ("lol omw", "on_my_way"),
    ("ok, when?", "ask_time_when"),
    ("morning! running late today", "running_late"),
    ("good night, love you", "love_affection"),
    ("thanks, you too", "thanks"),
    ("no worries, see you later", "goodbye"),
    ("hi sorry, wrong number", "apology"),
    ("k bye", "goodbye"),
    ("haha congrats", "congrats"),
    ("call me, i'm outside", "request_call"),
    ("yes please call me", "request_call"),
    ("nah i'm good, thanks", "decline_no"),
    ("almost there, sorry for the wait", "on_my_way"),
    ("can't talk now, call you later", "request_call"),
    ("wait, where and when?", "ask_location_where"),
    ("ok ok i'm coming, sorry!", "on_my_way"),
    ("thank you, so proud of you", "congrats"),
    ("sorry to hear that, love you", "love_affection"),
    ("where are you? call me", "request_call"),
    ("omg congrats lol", "congrats"),
    ("hey sorry, running behind", "running_late"),
]

# Generic chat wrappers used by the augmentation step.
PREFIXES = ["hey", "ok", "haha", "oh", "um", "so", "yeah", "hmm", "hi", "well"]
PREFIX_JOINERS = [" ", ", ", " ", "... "]
SUFFIXES = [", dude", " 🙂", ", man", " haha", " :)", " x", " btw", ", bro"]
EMOJI = ["🙂", "😊", "😅", "👍", "🙏", "😂", "❤️", "✨", "😬", "🤔"]
TRAILERS = ["", "!", "!!", "?!", "...", "."]
Q_TRAILERS = ["?", "??", "?!", "", "?..."]

TRAIL_RE = re.compile(r"[.!?]+$")


def norm(text):
    """Loose normal form used to check that base messages are really distinct."""
    t = unicodedata.normalize("NFC", text).lower()
    words = re.sub(r"[^\w]+", "", t)  # ignore case, punctuation and emoji ...
    return words or "".join(t.split())  # ... unless the message is only emoji


def typo(rng, text):
    """Drop, swap or double one letter inside a word of 3+ letters."""
    spans = [m.span() for m in re.finditer(r"[^\W\d_]{3,}", text)]
    if not spans:
        return text
    a, b = rng.choice(spans)
    i = rng.randrange(a, b - 1)  # never the last letter: a swap needs i+1
    op = rng.choice(["drop", "swap", "double"])
    if op == "drop":
        return text[:i] + text[i + 1:]
    if op == "swap":
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    return text[:i] + text[i] + text[i:]


def change_trailer(rng, text):
    stripped = TRAIL_RE.sub("", text).rstrip()
    if not stripped:
        return text
    if text.rstrip().endswith("?"):
        return stripped + rng.choice(Q_TRAILERS)
    return stripped + rng.choice(TRAILERS)


def augment(rng, text):
    """One augmented copy of a base message; always changes something."""
    for _ in range(10):
        t = text
        if rng.random() < 0.15:
            t = rng.choice(PREFIXES) + rng.choice(PREFIX_JOINERS) + t
        if rng.random() < 0.12:
            t = TRAIL_RE.sub("", t).rstrip() + rng.choice(SUFFIXES)
        if rng.random() < 0.10:
            t = typo(rng, t)
        r = rng.random()
        if r < 0.04:
            t = t.upper()
        elif r < 0.16:
            t = t[:1].upper() + t[1:]
        elif r < 0.22:
            t = t.lower()
        if rng.random() < 0.25:
            t = change_trailer(rng, t)
        if rng.random() < 0.12:
            t = t + rng.choice(["", " "]) + rng.choice(EMOJI)
        t = re.sub(r"\s+", " ", t).strip()
        if t and t != text:
            return t
    return text + " " + rng.choice(EMOJI)


def expand(rng, bases, n, taken, allow_dup):
    """n (text, base) pairs from bases: each base once clean, then augmented
    copies that avoid texts already in `taken` (a few exact repeats are
    allowed for very short messages, as real chat is repetitive)."""
    counts = [n // len(bases)] * len(bases)
    for i in rng.sample(range(len(bases)), n % len(bases)):
        counts[i] += 1
    out = []
    for base, k in zip(bases, counts):
        for j in range(k):
            if j == 0 and base not in taken:
                t = base
            elif allow_dup and len(base.split()) <= 2 and rng.random() < 0.03:
                t = base  # a natural exact repeat ("ok", "thanks")
            else:
                t = augment(rng, base)
                tries = 0
                while t in taken and tries < 50:
                    t = augment(rng, base)
                    tries += 1
            taken.add(t)
            out.append((t, base))
    return out


def check_bases():
    seen = {}
    problems = []
    for intent, bases in BASES.items():
        if len(bases) < 60:
            problems.append(f"{intent}: only {len(bases)} base messages")
        for b in bases:
            seen.setdefault(norm(b), []).append(intent)
    for text, intent in AMBIGUOUS:
        seen.setdefault(norm(text), []).append("ambiguous:" + intent)
    for key, where in seen.items():
        if len(where) > 1:
            problems.append(f"duplicate base {key!r} in {where}")
    for intent, bases in BASES.items():
        for b in bases:
            if len(b.split()) > 20:
                problems.append(f"too long: {b!r}")
    if problems:
        sys.exit("base message problems:\n  " + "\n  ".join(problems))


def main():
    check_bases()
    rng = random.Random(SEED)
    here = os.path.dirname(os.path.abspath(__file__))

    # 1. Split base messages per intent before any augmentation.
    corpus_bases, test_bases = {}, {}
    for intent, bases in BASES.items():
        seeds, rest = bases[:N_SEEDS], bases[N_SEEDS:]
        rest = rest[:]
        rng.shuffle(rest)
        n_test = round(len(bases) * TEST_FRACTION)
        test_bases[intent] = rest[:n_test]
        corpus_bases[intent] = seeds + rest[n_test:]
    amb = AMBIGUOUS[:]
    rng.shuffle(amb)
    n_amb_test = round(len(amb) * TEST_FRACTION)
    amb_test, amb_corpus = amb[:n_amb_test], amb[n_amb_test:]

    # 2. Corpus.
    taken = set()
    records = []  # (text, gold, is_seed)
    for intent, bases in corpus_bases.items():
        seed_set = set(bases[:N_SEEDS])
        for t, base in expand(rng, bases, CORPUS_PER_INTENT, taken, True):
            is_seed = t == base and base in seed_set
            if is_seed:
                seed_set.discard(base)
            records.append((t, intent, is_seed))
        assert not seed_set, f"{intent}: seeds not placed: {seed_set}"
    for i in range(CORPUS_AMBIGUOUS):
        text, gold = amb_corpus[i % len(amb_corpus)]
        t = text if i < len(amb_corpus) and text not in taken else augment(rng, text)
        while t in taken:
            t = augment(rng, text)
        taken.add(t)
        records.append((t, gold, False))
    rng.shuffle(records)

    # 3. Test set from held-out bases; never an exact corpus text.
    corpus_texts = {r[0] for r in records}
    test_taken = set(corpus_texts)
    test = []
    for intent, bases in test_bases.items():
        for t, _ in expand(rng, bases, TEST_PER_INTENT, test_taken, False):
            test.append((t, intent))
    for i in range(TEST_AMBIGUOUS):
        text, gold = amb_test[i % len(amb_test)]
        t = text if text not in test_taken else augment(rng, text)
        while t in test_taken:
            t = augment(rng, text)
        test_taken.add(t)
        test.append((t, gold))
    rng.shuffle(test)
    clash = [t for t, _ in test if t in corpus_texts]
    assert not clash, clash

    # 4. Write.
    def dump(obj):
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"

    with open(os.path.join(here, "corpus.jsonl"), "w", encoding="utf-8", newline="\n") as f, \
         open(os.path.join(here, "corpus.gold.jsonl"), "w", encoding="utf-8", newline="\n") as g:
        for n, (text, gold, is_seed) in enumerate(records, 1):
            rec = {"id": f"r{n:04d}", "text": text}
            gold_rec = dict(rec, label=gold)
            f.write(dump(gold_rec if is_seed else rec))
            g.write(dump(gold_rec))
    with open(os.path.join(here, "test.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for text, gold in test:
            f.write(dump({"text": text, "label": gold}))

    n_seed = sum(r[2] for r in records)
    print(f"corpus: {len(records)} records ({n_seed} seeds), test: {len(test)} records")


if __name__ == "__main__":
    main()
