// lexperience players: the reply player (a fragmented MP4 played through Media Source Extensions
// while the server is still making it) and the episode player (a plain <audio>).
// Loaded once per page (the players' `head`); each gr.HTML player mounts one instance.
(function () {
  "use strict";
  if (window.lexperience && window.lexperience.mountReply) return;

  // MediaSource everywhere but iPhone Safari, which has only ManagedMediaSource (17.1+)
  const Source = window.MediaSource || window.ManagedMediaSource;
  const players = {};
  const episodes = {};
  const now = () => performance.now();
  const once = (target, name) => new Promise((resolve) => target.addEventListener(name, resolve, { once: true }));

  class ReplyPlayer {
    constructor(root, id) {
      this.root = root;
      this.id = id;
      this.video = root.querySelector("video");
      this.caption = root.querySelector(".lex-caption");
      this.toggle = root.querySelector(".lex-toggle");
      this.replay = root.querySelector(".lex-replay");
      this.url = null;
      this.offset = 0; // media seconds before reply position 0 (the AAC priming)
      this.generation = 0;
      this.controller = null;
      this.armedAt = null;
      this.active = false; // a reply is loaded and has not been stopped
      this.history = []; // stats of every reply this player played
      this.stats = null;
      this.report = null; // where to POST the played position (the Live tab), or null
      this.reportedAt = 0;
      this.video.addEventListener("playing", () => this._playing());
      this.video.addEventListener("timeupdate", () => this._report());
      const flip = () => {
        if (!this.url) return;
        if (this.video.paused) this.video.play().catch(() => {});
        else this.video.pause();
      };
      if (this.toggle) this.toggle.addEventListener("click", flip);
      this.video.addEventListener("click", flip);
      if (this.replay) this.replay.addEventListener("click", () => {
        if (!this.url) return;
        this.video.currentTime = 0;
        this.video.play().catch(() => {});
      });
      for (const name of ["play", "pause", "emptied", "loadeddata"]) {
        this.video.addEventListener(name, () => this._buttons());
      }
      this.video.addEventListener("ended", () => {
        if (this.stats) this.stats.endedAt = now();
        this._say(this._latency() + " · played to the end");
      });
      this.video.addEventListener("waiting", () => {
        if (this.stats && this.stats.firstPlayingAt) this.stats.stalls += 1;
      });
    }

    // The listener finished asking (a click on Ask, the end of a recording): the clock of the
    // first-playback latency starts here.
    arm() {
      this.armedAt = now();
    }

    // Seconds of the reply the listener has heard (null: no reply loaded).
    position() {
      if (!this.url) return null;
      return Math.max(0, this.video.currentTime - this.offset);
    }

    // Stop playing and forget the rest of this reply; returns what was heard (null: nothing
    // was playing, so nothing to cut).
    stop() {
      const played = this.active ? this.position() : null;
      this.active = false;
      this.generation += 1;
      if (this.controller) this.controller.abort();
      this.controller = null;
      this.video.pause();
      if (this.stats && played !== null) this.stats.stoppedAt = played;
      if (played !== null && this.stats && !this.stats.endedAt) this._say(this._latency() + ` · stopped at ${played.toFixed(1)} s`);
      return played;
    }

    update(value) {
      const url = value && value.url;
      this.report = (value && value.report) || null;
      if (!url) {
        this.stop();
        this.url = null;
        this.video.removeAttribute("src");
        this.video.load();
        this._say("");
        this._buttons();
        return;
      }
      if (url !== this.url) this.start(url, value.turn);
    }

    async start(url, turn) {
      this.stop();
      const generation = this.generation;
      const controller = new AbortController();
      this.controller = controller;
      this.url = url;
      this.active = true;
      const armed = this.armedAt;
      this.armedAt = null;
      this.stats = {
        turn: turn, url: url, armedAt: armed, requestedAt: now(), firstBytesAt: null, firstPlayingAt: null,
        streamEndAt: null, endedAt: null, bytes: 0, stalls: 0, stoppedAt: null, mode: null, error: null,
      };
      this.history.push(this.stats);
      const stats = this.stats;
      this._say("the host is thinking…");
      try {
        const response = await fetch(url, { signal: controller.signal, cache: "no-store" });
        if (response.status === 204) { this._say("no spoken reply"); this.active = false; return; }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const mime = response.headers.get("X-Lexperience-Mime");
        this.offset = parseFloat(response.headers.get("X-Lexperience-Offset") || "0") || 0;
        if (Source && mime && Source.isTypeSupported(mime)) {
          stats.mode = "mse";
          await this._stream(response, mime, generation, stats);
        } else {
          stats.mode = "file"; // no MSE here: play the whole reply once it is complete
          const blob = await response.blob();
          stats.bytes = blob.size;
          stats.firstBytesAt = stats.streamEndAt = now();
          if (generation !== this.generation) return;
          this.video.src = URL.createObjectURL(blob);
          this.video.play().catch(() => this._say("press play to hear the reply"));
        }
      } catch (err) {
        if (err && err.name === "AbortError") return;
        stats.error = String(err);
        this._say("could not play the reply: " + err);
      }
    }

    async _stream(response, mime, generation, stats) {
      const source = new Source();
      if (Source !== window.MediaSource) this.video.disableRemotePlayback = true; // required there
      this.video.src = URL.createObjectURL(source);
      await once(source, "sourceopen");
      if (generation !== this.generation) return;
      const buffer = source.addSourceBuffer(mime);
      const queue = [];
      let finished = false;
      let started = false;
      const pump = () => {
        if (generation !== this.generation || buffer.updating || source.readyState !== "open") return;
        if (queue.length) {
          const total = queue.reduce((n, part) => n + part.byteLength, 0);
          const joined = new Uint8Array(total);
          let at = 0;
          for (const part of queue.splice(0)) { joined.set(part, at); at += part.byteLength; }
          buffer.appendBuffer(joined);
        } else if (finished) {
          source.endOfStream();
        }
      };
      buffer.addEventListener("updateend", () => {
        if (!started && generation === this.generation) {
          started = true;
          this.video.play().catch(() => this._say("press play to hear the reply"));
        }
        pump();
      });
      const reader = response.body.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (generation !== this.generation) { reader.cancel(); return; }
        if (stats.firstBytesAt === null) stats.firstBytesAt = now();
        stats.bytes += value.byteLength;
        queue.push(value);
        pump();
      }
      stats.streamEndAt = now();
      finished = true;
      pump();
    }

    // Tell the server how much of the reply was heard (a few times a second while it plays).
    _report() {
      if (!this.report || !this.active || this.video.paused) return;
      const t = now();
      if (t - this.reportedAt < 200) return;
      this.reportedAt = t;
      const body = JSON.stringify({ url: this.url, seconds: this.position() });
      fetch(this.report, { method: "POST", headers: { "Content-Type": "application/json" }, body: body, keepalive: true })
        .catch(() => {});
    }

    _playing() {
      const stats = this.stats;
      if (!stats || stats.firstPlayingAt !== null) return;
      stats.firstPlayingAt = now();
      this._say(this._latency());
    }

    _latency() {
      const s = this.stats;
      if (!s || s.firstPlayingAt === null) return "";
      const from = s.armedAt !== null ? s.armedAt : s.requestedAt;
      const what = s.armedAt !== null ? "after you asked" : "after the reply started";
      return `first sound ${((s.firstPlayingAt - from) / 1000).toFixed(2)} s ${what}`;
    }

    _say(text) {
      if (this.caption) this.caption.textContent = text;
    }

    _buttons() {
      const loaded = Boolean(this.url);
      if (this.toggle) {
        this.toggle.disabled = !loaded;
        const playing = loaded && !this.video.paused;
        this.toggle.textContent = playing ? "Pause" : "Play";
      }
      if (this.replay) this.replay.disabled = !loaded;
    }
  }

  class EpisodePlayer {
    constructor(root, id, trigger) {
      this.root = root;
      this.id = id;
      this.audio = root.querySelector("audio");
      this.src = null;
      this.quiet = false;
      this.audio.addEventListener("pause", () => {
        if (this.quiet) { this.quiet = false; return; }
        trigger("pause", { position: this.audio.currentTime });
      });
      this.audio.addEventListener("play", () => {
        // the listener goes back to the episode: the host stops talking
        const reply = players[this.id];
        const played = reply ? reply.stop() : null;
        trigger("play", { position: this.audio.currentTime, played: played });
      });
    }

    position() {
      return this.src ? this.audio.currentTime : null;
    }

    // Pause without telling the server (the caller sends the position itself).
    pauseQuietly() {
      if (!this.audio.paused) { this.quiet = true; this.audio.pause(); }
    }

    resume() {
      if (this.src) return this.audio.play();
      return null;
    }

    update(value) {
      const src = value && value.src;
      if (src === this.src) return;
      this.src = src || null;
      if (src) {
        this.audio.src = src;
        if (value.position) this.audio.currentTime = value.position;
      } else {
        this.audio.removeAttribute("src");
        this.audio.load();
      }
    }
  }

  window.lexperience = {
    players: players,
    episodes: episodes,
    player: (id) => players[id],
    episode: (id) => episodes[id],
    mountReply(element, id, props, watch) {
      const player = new ReplyPlayer(element, id);
      players[id] = player;
      player.update(props.value);
      watch("value", () => player.update(props.value));
    },
    mountEpisode(element, id, props, watch, trigger) {
      const player = new EpisodePlayer(element, id, trigger);
      episodes[id] = player;
      player.update(props.value);
      watch("value", () => player.update(props.value));
    },
  };
})();
