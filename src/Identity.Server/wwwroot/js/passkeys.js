// Passkeys (WebAuthn) on Identity's pages. The content security policy allows no inline script, so the pages only
// mark their forms: <form data-passkey="create|get" data-options-url="..."> with a hidden "credential" input and a
// [data-passkey-status] element. On submit this script fetches the options (a POST carrying the form's anti-forgery
// token), asks the browser for a credential, puts its JSON in "credential" and submits the form to the server.
(() => {
    'use strict';

    const supported = typeof window.PublicKeyCredential === 'function'
        && typeof navigator.credentials?.create === 'function'
        && window.isSecureContext;

    // --- base64url <-> ArrayBuffer, for browsers without the WebAuthn JSON helpers (WebAuthn Level 3 §5.1.8-§5.1.10).
    const toBuffer = (value) => {
        const base64 = value.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(value.length / 4) * 4, '=');
        return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer;
    };
    const toBase64Url = (buffer) => {
        let binary = '';
        new Uint8Array(buffer).forEach((b) => { binary += String.fromCharCode(b); });
        return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    };
    const descriptors = (list) => (list || []).map((d) => ({ ...d, id: toBuffer(d.id) }));

    const creationOptions = (json) => typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function'
        ? PublicKeyCredential.parseCreationOptionsFromJSON(json)
        : { ...json, challenge: toBuffer(json.challenge), user: { ...json.user, id: toBuffer(json.user.id) }, excludeCredentials: descriptors(json.excludeCredentials) };

    const requestOptions = (json) => typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function'
        ? PublicKeyCredential.parseRequestOptionsFromJSON(json)
        : { ...json, challenge: toBuffer(json.challenge), allowCredentials: descriptors(json.allowCredentials) };

    const credentialJson = (credential) => {
        if (typeof credential.toJSON === 'function') {
            return JSON.stringify(credential);
        }

        const r = credential.response;
        const response = { clientDataJSON: toBase64Url(r.clientDataJSON) };
        if (r.attestationObject) {
            response.attestationObject = toBase64Url(r.attestationObject);
            response.transports = typeof r.getTransports === 'function' ? r.getTransports() : [];
        } else {
            response.authenticatorData = toBase64Url(r.authenticatorData);
            response.signature = toBase64Url(r.signature);
            response.userHandle = r.userHandle ? toBase64Url(r.userHandle) : null;
        }

        return JSON.stringify({
            id: credential.id,
            rawId: toBase64Url(credential.rawId),
            type: credential.type,
            authenticatorAttachment: credential.authenticatorAttachment ?? null,
            clientExtensionResults: credential.getClientExtensionResults(),
            response,
        });
    };

    const explain = (error) => {
        switch (error?.name) {
            case 'NotAllowedError': return 'The passkey request was cancelled or timed out.';
            case 'InvalidStateError': return 'This device already holds a passkey for your account.';
            case 'SecurityError': return 'Passkeys cannot be used at this address.';
            default: return 'Passkeys could not be used. Try again.';
        }
    };

    const attach = (form) => {
        const mode = form.dataset.passkey;
        const status = form.querySelector('[data-passkey-status]');
        const button = form.querySelector('button[type=submit]');
        const say = (text) => { if (status) { status.textContent = text; } };

        form.addEventListener('submit', async (event) => {
            event.preventDefault();
            say('');
            if (button) { button.disabled = true; }
            try {
                const response = await fetch(form.dataset.optionsUrl, {
                    method: 'POST',
                    body: new FormData(form),
                    credentials: 'same-origin',
                    headers: { Accept: 'application/json' },
                });
                const json = (response.headers.get('Content-Type') || '').startsWith('application/json');
                if (response.status === 401 || (response.ok && !json)) {
                    // The session or the pending sign-in ended (a sign-in page came back): reloading shows what next.
                    window.location.reload();
                    return;
                }

                if (!response.ok) {
                    throw new Error(`The server refused the passkey request (${response.status}).`);
                }

                const options = await response.json();
                const credential = mode === 'create'
                    ? await navigator.credentials.create({ publicKey: creationOptions(options) })
                    : await navigator.credentials.get({ publicKey: requestOptions(options) });
                form.elements.namedItem('credential').value = credentialJson(credential);
                form.submit(); // submit() fires no submit event: this goes to the server
            } catch (error) {
                say(error instanceof DOMException ? explain(error) : (error?.message || explain(error)));
                if (button) { button.disabled = false; }
            }
        });
        form.hidden = false;
    };

    const forms = document.querySelectorAll('form[data-passkey]');
    if (supported) {
        forms.forEach(attach);
    } else {
        document.querySelectorAll('[data-passkey-unsupported]').forEach((element) => { element.hidden = false; });
    }
})();
