using Microsoft.AspNetCore.Identity;

namespace Identity.Server.Account.Mfa;

/// <summary>The RFC 8176 authentication method references a passkey contributes to a session's <c>amr</c>.</summary>
public static class PasskeyMethods
{
    /// <summary>
    /// RFC 8176 §2 <c>hwk</c> (proof of possession of a hardware-secured key) for a device-bound credential, or
    /// <c>swk</c> (a software-secured key) for a synced one: a backup-eligible credential (WebAuthn Level 3 §6.1,
    /// the BE flag) is copied between devices by its provider, so its private key is not held by one piece of hardware.
    /// </summary>
    public static string Possession(UserPasskeyInfo passkey) => passkey.IsBackupEligible ? "swk" : "hwk";

    /// <summary>RFC 8176 §2 <c>user</c>: the user-presence test every WebAuthn assertion carries (the UP flag).</summary>
    public const string UserPresence = "user";
}
