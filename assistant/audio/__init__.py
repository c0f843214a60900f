"""Sound: speech synthesis and playing (the speaker), tones, the microphone and Vosk recognition."""
