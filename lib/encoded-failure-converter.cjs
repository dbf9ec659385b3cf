// The failure converter that goes with the payload codec (lib/codec.ts): each failure's message
// and stack trace travel in its encoded attributes, a payload the codec encrypts; the failure's
// plain message reads "Encoded failure". Receivers restore the originals when they decode.
// CommonJS, because the Temporal SDK loads it with require() in the worker and bundles it into
// the workflow sandbox.
const { DefaultFailureConverter } = require('@temporalio/common');

exports.failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
