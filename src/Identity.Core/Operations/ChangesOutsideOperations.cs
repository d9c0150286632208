using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Identity.Core.Operations;

/// <summary>What the outbox interceptor does with a change a region would see that no operation made.</summary>
public enum OutsideChangeMode
{
    /// <summary>Logged as an error, and its event still written: regions stay right, the change lacks only its audit entry.</summary>
    Log,

    /// <summary>The SaveChanges fails (nothing is written): a path that forgot its operation cannot go unnoticed.</summary>
    Fail,
}

/// <summary>
/// The safety net under the operations (<see cref="ChangeUnit"/>): a change to a user that a region would see (new,
/// deleted, or a snapshot field changed, for a user of an account) which reaches SaveChanges outside any operation escaped
/// the rule, version and audit of its operation. <see cref="OutsideChangeMode.Fail"/> in development, and in the test that
/// drives every user path with it; <see cref="OutsideChangeMode.Log"/> in production (decision 0052).
/// </summary>
public sealed class ChangesOutsideOperations(OutsideChangeMode mode, ILogger<ChangesOutsideOperations> logger)
{
    public const string SettingName = "Propagation:ChangesOutsideOperations";

    /// <summary>Log mode, without a logger: for hosts that register none (tools, benches).</summary>
    public static readonly ChangesOutsideOperations Unwatched = new(OutsideChangeMode.Log, NullLogger<ChangesOutsideOperations>.Instance);

    public OutsideChangeMode Mode => mode;

    /// <summary>Called by the interceptor for each escaped change, before its event is written.</summary>
    public void Report(string entity, string id)
    {
        if (mode == OutsideChangeMode.Fail)
        {
            throw new InvalidOperationException(
                $"A change to {entity} {id} reached SaveChanges outside any operation: make it through its operation (Identity.Core.Users, Identity.Core.Operations).");
        }

        logger.LogError("A change to {Entity} {Id} reached SaveChanges outside any operation: its event is written, its audit entry is missing",
            entity, id);
    }
}
