namespace Identity.Core.Operations;

/// <summary>How an operation ended; the HTTP edge (admin API, pages) turns it into its own answer.</summary>
public enum OperationOutcome
{
    /// <summary>Done and committed.</summary>
    Done,

    /// <summary>The input breaks a rule of the field named in <see cref="OperationResult.Errors"/>; nothing was written.</summary>
    Invalid,

    /// <summary>The change breaks a rule about the current state (the last active owner…); nothing was written.</summary>
    Conflict,

    /// <summary>What the operation names does not exist (<see cref="OperationResult.Detail"/> says what); nothing was written.</summary>
    NotFound,

    /// <summary>The actor may not make this change (only an owner makes or removes an owner…); nothing was written.</summary>
    Forbidden,

    /// <summary>Someone else changed the user or the account first (its version moved); nothing was written.</summary>
    Stale,
}

/// <summary>The outcome of one operation, with what the refusal needs to be explained.</summary>
public sealed record OperationResult(OperationOutcome Outcome, string? Detail = null, IReadOnlyDictionary<string, string[]>? Errors = null)
{
    public static readonly OperationResult Done = new(OperationOutcome.Done);

    public static readonly OperationResult Stale = new(OperationOutcome.Stale);

    public bool Succeeded => Outcome == OperationOutcome.Done;

    public static OperationResult Conflict(string detail) => new(OperationOutcome.Conflict, detail);

    public static OperationResult NotFound(string what) => new(OperationOutcome.NotFound, what);

    public static OperationResult Forbidden(string detail) => new(OperationOutcome.Forbidden, detail);

    public static OperationResult Invalid(IReadOnlyDictionary<string, string[]> errors) => new(OperationOutcome.Invalid, Errors: errors);

    public static OperationResult Invalid(string field, string message) => Invalid(new Dictionary<string, string[]> { [field] = [message] });
}
